#include "kiln/distributed/ddp.h"

#include <cstring>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/error.h"

namespace kiln::distributed {

// One parameter's place in its bucket.
struct Slot {
  std::string name;
  Tensor param;
  size_t bucket = 0;
  int64_t offset = 0;  // first gradient element in the bucket's buffer
  int64_t index = 0;   // position among the bucket's slots (its flag)
  uint64_t hook_id = 0;
  bool written = false;  // this step's gradient is in the buffer
};

// Gradients of several parameters of one dtype, reduced by one all-reduce. buffer: (numel + flags)
// — the scaled gradients back to back, then one flag per slot (1 = this rank had a gradient).
struct Bucket {
  DType dtype = kFloat32;
  std::vector<size_t> slots;
  int64_t numel = 0;
  Array buffer;
  int64_t remaining = 0;  // slots not written yet this step
  bool started = false;
  AllReduceRequest request;
};

struct DistributedDataParallel::Reducer {
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  size_t next_start = 0;  // buckets start in index order on every rank
  bool armed = false;
  double weight = 1.0;
  DdpStats stats;

  void on_gradient(size_t i);
  void write_slot(Slot& s, Bucket& b);
  void start(size_t k, bool in_backward);
  void start_ready();
};

namespace {

template <typename T>
void scaled_copy(T* dst, const T* src, int64_t n, T w) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * w;
}

template <typename T>
void fill(T* dst, int64_t n, T v) {
  for (int64_t i = 0; i < n; ++i) dst[i] = v;
}

}  // namespace

void DistributedDataParallel::Reducer::write_slot(Slot& s, Bucket& b) {
  const int64_t n = s.param.numel();
  const Array& grad = s.param.impl()->grad;
  const bool have = grad.defined();
  const Array g = have ? grad.contiguous() : Array();
  if (b.dtype == kFloat64) {
    double* dst = b.buffer.data<double>();
    if (have) {
      scaled_copy(dst + s.offset, g.data<double>(), n, weight);
    } else {
      fill(dst + s.offset, n, 0.0);
    }
    dst[b.numel + s.index] = have ? 1.0 : 0.0;
  } else {
    float* dst = b.buffer.data<float>();
    if (have) {
      scaled_copy(dst + s.offset, g.data<float>(), n, static_cast<float>(weight));
    } else {
      fill(dst + s.offset, n, 0.0f);
    }
    dst[b.numel + s.index] = have ? 1.0f : 0.0f;
  }
  s.written = true;
  --b.remaining;
}

void DistributedDataParallel::Reducer::start(size_t k, bool in_backward) {
  Bucket& b = buckets[k];
  b.request = AllReduceRequest(
      b.buffer.raw_data(), b.buffer.numel(), b.dtype == kFloat64,
      fmt::format("the gradient all-reduce of bucket {} of {}", k, buckets.size()));
  b.started = true;
  (in_backward ? stats.buckets_started_in_backward : stats.buckets_started_at_finish) += 1;
  stats.bytes_reduced += b.numel * static_cast<int64_t>(dtype_size(b.dtype));
}

void DistributedDataParallel::Reducer::start_ready() {
  while (next_start < buckets.size() && buckets[next_start].remaining == 0)
    start(next_start++, /*in_backward=*/true);
  // MPI progresses a non-blocking collective only inside MPI calls: poke the ones in flight.
  for (size_t k = 0; k < next_start; ++k) buckets[k].request.test();
}

void DistributedDataParallel::Reducer::on_gradient(size_t i) {
  if (!armed) return;  // a backward outside prepare / finish (e.g. evaluation code) is local
  Slot& s = slots[i];
  Bucket& b = buckets[s.bucket];
  KILN_CHECK(!s.written && !b.started,
             "DistributedDataParallel: parameter '{}' received a second gradient before "
             "finish_gradient_synchronization() (one backward per prepare_for_backward)",
             s.name);
  write_slot(s, b);
  start_ready();
}

DistributedDataParallel::DistributedDataParallel(nn::NamedTensors params,
                                                 DistributedDataParallelOptions o)
    : r_(std::make_unique<Reducer>()) {
  KILN_CHECK(available(),
             "DistributedDataParallel: Kiln was built without MPI (install Debian's "
             "libopenmpi-dev and openmpi-bin, then configure CMake again)");
  KILN_CHECK(is_initialized(),
             "DistributedDataParallel: call kiln::distributed::init() first (and start the program "
             "with mpirun -np N)");
  KILN_CHECK(o.bucket_cap_mb > 0, "DistributedDataParallel: bucket_cap_mb must be positive, got {}",
             o.bucket_cap_mb);
  const double cap_bytes = o.bucket_cap_mb * 1e6;
  // Reverse registration order: the last layers' gradients are ready first in backward.
  uint64_t fp = 1469598103934665603ULL;
  auto mix = [&](uint64_t v) { fp = (fp ^ v) * 1099511628211ULL; };
  int open_f32 = -1, open_f64 = -1;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    auto& [name, p] = *it;
    if (!p.defined() || !p.requires_grad()) continue;
    KILN_CHECK_TYPE(p.dtype() == kFloat32 || p.dtype() == kFloat64,
                    "DistributedDataParallel: parameter '{}' is {}; only float32 and float64 "
                    "gradients are averaged",
                    name, p.dtype());
    for (char c : name) mix(static_cast<uint64_t>(c));
    mix(static_cast<uint64_t>(p.dtype()));
    for (int64_t d : p.shape()) mix(static_cast<uint64_t>(d));
    int& open = p.dtype() == kFloat64 ? open_f64 : open_f32;
    const double bytes =
        static_cast<double>(p.numel()) * static_cast<double>(dtype_size(p.dtype()));
    const bool full = open >= 0 && !r_->buckets[static_cast<size_t>(open)].slots.empty() &&
                      static_cast<double>(r_->buckets[static_cast<size_t>(open)].numel) *
                                  static_cast<double>(dtype_size(p.dtype())) +
                              bytes >
                          cap_bytes;
    if (open < 0 || full) {
      r_->buckets.emplace_back();
      r_->buckets.back().dtype = p.dtype();
      open = static_cast<int>(r_->buckets.size() - 1);
    }
    Bucket& b = r_->buckets[static_cast<size_t>(open)];
    Slot s;
    s.name = name;
    s.param = p;
    s.bucket = static_cast<size_t>(open);
    s.offset = b.numel;
    s.index = static_cast<int64_t>(b.slots.size());
    b.numel += p.numel();
    b.slots.push_back(r_->slots.size());
    r_->slots.push_back(std::move(s));
  }
  // Every rank must build the same buckets, or the all-reduces would sum unrelated numbers.
  const auto fps =
      all_gather({static_cast<double>(fp >> 32), static_cast<double>(fp & 0xFFFFFFFF)});
  for (size_t r = 0; r < fps.size(); ++r)
    KILN_CHECK(fps[r] == fps[0],
               "DistributedDataParallel: rank {} has other parameters (names, shapes or dtypes) "
               "than rank 0: every rank must build the same model",
               r);
  for (Bucket& b : r_->buckets)
    b.buffer = kernels::empty({b.numel + static_cast<int64_t>(b.slots.size())}, b.dtype);
  Reducer* reducer = r_.get();
  for (size_t i = 0; i < r_->slots.size(); ++i)
    r_->slots[i].hook_id = r_->slots[i].param.register_post_accumulate_grad_hook(
        [reducer, i](const Tensor&) { reducer->on_gradient(i); });
}

DistributedDataParallel::~DistributedDataParallel() {
  for (Slot& s : r_->slots) s.param.remove_post_accumulate_grad_hook(s.hook_id);
  // Buckets still in flight complete in AllReduceRequest's destructor before the buffers go.
}

void DistributedDataParallel::prepare_for_backward(double weight) {
  KILN_CHECK(!r_->armed,
             "DistributedDataParallel::prepare_for_backward: the previous step was not finished "
             "(call finish_gradient_synchronization() after each backward)");
  r_->weight = weight < 0 ? 1.0 / static_cast<double>(world_size()) : weight;
  for (Slot& s : r_->slots) s.written = false;
  for (Bucket& b : r_->buckets) {
    b.remaining = static_cast<int64_t>(b.slots.size());
    b.started = false;
  }
  r_->next_start = 0;
  r_->armed = true;
}

void DistributedDataParallel::finish_gradient_synchronization() {
  Reducer& r = *r_;
  KILN_CHECK(r.armed,
             "DistributedDataParallel::finish_gradient_synchronization: call "
             "prepare_for_backward() before the backward");
  // Buckets with parameters that got no gradient this step: zeros (and flag 0) stand in for them.
  for (; r.next_start < r.buckets.size(); ++r.next_start) {
    Bucket& b = r.buckets[r.next_start];
    for (size_t i : b.slots)
      if (!r.slots[i].written) r.write_slot(r.slots[i], b);
    r.start(r.next_start, /*in_backward=*/false);
  }
  for (Bucket& b : r.buckets) r.stats.wait_seconds += b.request.wait();
  for (Bucket& b : r.buckets) {
    for (size_t i : b.slots) {
      Slot& s = r.slots[i];
      const int64_t n = s.param.numel();
      const size_t esize = dtype_size(b.dtype);
      const char* base = static_cast<const char*>(b.buffer.raw_data());
      const double flag = b.dtype == kFloat64 ? b.buffer.data<double>()[b.numel + s.index]
                                              : b.buffer.data<float>()[b.numel + s.index];
      if (flag > 0) {
        Array g = kernels::empty(s.param.shape(), b.dtype);
        std::memcpy(g.raw_data(), base + static_cast<size_t>(s.offset) * esize,
                    static_cast<size_t>(n) * esize);
        s.param.set_grad(Tensor(g));
      } else {
        s.param.set_grad(Tensor());
      }
    }
  }
  r.armed = false;
  ++r.stats.steps;
}

int64_t DistributedDataParallel::num_buckets() const {
  return static_cast<int64_t>(r_->buckets.size());
}

std::vector<std::vector<std::string>> DistributedDataParallel::bucket_parameter_names() const {
  std::vector<std::vector<std::string>> out;
  for (const Bucket& b : r_->buckets) {
    out.emplace_back();
    for (size_t i : b.slots) out.back().push_back(r_->slots[i].name);
  }
  return out;
}

const DdpStats& DistributedDataParallel::stats() const {
  return r_->stats;
}

void DistributedDataParallel::reset_stats() {
  r_->stats = DdpStats{};
}

}  // namespace kiln::distributed
