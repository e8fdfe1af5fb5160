#pragma once
// The op registry: which op names exist and which were recorded.
//
// Each file under kiln/autograd/ops declares, beside its ops, every name it records:
//
//   const OpDeclarations kOps({"add", "sub", "maximum", ...},   // differentiable (make_op)
//                             {"eq", "argmax", ...});           // make_nondiff_op
//
// and record_op (kiln/autograd/op.h) adds each name it records to a registry collected at run
// time, so ops whose name is a variable or that are recorded from a header are seen too. Tests hold
// the two together: every suite fails when an op was recorded without a declaration
// (tests/op_registry_check.cpp), and the gradcheck table needs a case for every declared
// differentiable op (tests/autograd/gradcheck_table_test.cpp) — whether or not a test ran it.
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>

namespace kiln {

/// Declares op names at static initialisation (one object per ops file).
struct OpDeclarations {
  OpDeclarations(std::initializer_list<std::string_view> differentiable,
                 std::initializer_list<std::string_view> nondifferentiable = {});
};

/// Every declared op name, mapped to whether it is declared differentiable (a name may be both,
/// e.g. "cast": float→float records a differentiable op, float→int64 a non-differentiable one).
std::map<std::string, bool> declared_op_names();

/// Every op name recorded so far in this process (whether or not grad mode was on), mapped to
/// whether it was ever recorded as differentiable (make_op / make_multi_op).
std::map<std::string, bool> recorded_op_names();

namespace detail {
/// Adds `name` to the recorded registry (record_op calls it for every op; a shared lock when
/// known).
void note_op_name(std::string_view name, bool differentiable);
}  // namespace detail

}  // namespace kiln
