#pragma once
// The names of the ops recorded in this process, collected at run time by make_op, make_multi_op
// and make_nondiff_op (kiln/autograd/op.h). Coverage checks read it (tests/autograd's gradcheck
// table: every differentiable op recorded must have a case), so ops whose name is a variable or
// that are recorded from a header are seen too, not only string literals in a source file.
#include <map>
#include <string>
#include <string_view>

namespace kiln {

/// Every op name recorded so far (whether or not grad mode was on), mapped to whether it was
/// recorded as differentiable (make_op / make_multi_op) or not (make_nondiff_op).
std::map<std::string, bool> recorded_op_names();

namespace detail {
/// Adds `name` to the registry (called by record_op for every op call; a shared lock when known).
void note_op_name(std::string_view name, bool differentiable);
}  // namespace detail

}  // namespace kiln
