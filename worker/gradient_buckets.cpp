#include "worker/gradient_buckets.hpp"

#include <stdexcept>

#include "worker/bucket_schedule.hpp"

namespace e2e {

namespace {

std::vector<int64_t> gradient_bytes(const std::vector<torch::Tensor>& parameters) {
  std::vector<int64_t> bytes;
  for (const torch::Tensor& p : parameters) {
    TORCH_CHECK(
        p.scalar_type() == parameters.front().scalar_type() && p.device() == parameters.front().device(),
        "gradient buckets: all parameters must share one dtype and device");
    bytes.push_back(p.numel() * p.element_size());
  }
  return bytes;
}

}  // namespace

struct GradientBuckets::State {
  Communicator* comm = nullptr;
  BucketSchedule schedule;
  std::vector<torch::Tensor> parameters;
  std::vector<torch::Tensor> flats;  // per bucket
  std::vector<torch::Tensor> slots;  // per parameter: its place in its bucket's flat buffer, shaped like it
  std::vector<std::unique_ptr<PendingCollective>> pending;  // per bucket
  bool active = false;

  State(const std::vector<torch::Tensor>& params, Communicator& c, int64_t bucket_bytes)
      : comm(&c), schedule(gradient_bytes(params), bucket_bytes), parameters(params) {
    allocate();
  }

  void allocate() {
    pending.resize(schedule.bucket_count());
    if (parameters.empty()) return;
    const auto options = parameters.front().options().requires_grad(false);
    const int64_t element = parameters.front().element_size();
    for (std::size_t b = 0; b < schedule.bucket_count(); ++b)
      flats.push_back(torch::zeros({schedule.bytes_of(b) / element}, options));
    for (std::size_t k = 0; k < parameters.size(); ++k) {
      const torch::Tensor& flat = flats[schedule.bucket_of(k)];
      slots.push_back(
          flat.narrow(0, schedule.offset_of(k) / element, parameters[k].numel()).view(parameters[k].sizes()));
    }
  }

  void on_gradient(std::size_t k, const torch::Tensor& gradient) {
    if (!active) return;
    torch::NoGradGuard no_grad;
    const BucketRange ready = schedule.mark_ready(k);  // throws for a duplicate before its slot is touched
    if (gradient.defined())
      slots[k].copy_(gradient);
    else
      slots[k].zero_();
    launch(ready);
  }

  void launch(BucketRange range) {
    for (std::size_t b = range.first; b < range.last; ++b) pending[b] = comm->start_all_reduce_sum(flats[b]);
  }

  // Parameters without a gradient this step (e.g. unused heads) contribute zeros; every rank has the same
  // graph, so the same ones are missing everywhere.
  void zero_missing(BucketRange range) {
    for (std::size_t b = range.first; b < range.last; ++b)
      for (std::size_t k : schedule.parameters_in(b))
        if (!schedule.received(k)) slots[k].zero_();
  }

  void write_average(std::size_t k) {
    torch::Tensor& grad = parameters[k].mutable_grad();
    if (grad.defined())
      grad.copy_(slots[k]);
    else
      grad = slots[k].clone();
  }
};

GradientBuckets::GradientBuckets(const std::vector<torch::Tensor>& parameters, Communicator& comm,
                                 int64_t bucket_bytes)
    : state_(std::make_shared<State>(parameters, comm, bucket_bytes)) {
  std::weak_ptr<State> weak = state_;
  for (std::size_t k = 0; k < parameters.size(); ++k) {
    torch::Tensor p = parameters[k];
    p.register_hook([weak, k](torch::Tensor gradient) {
      if (auto state = weak.lock()) state->on_gradient(k, gradient);
    });
  }
}

GradientBuckets::~GradientBuckets() {
  state_->active = false;
}

int64_t GradientBuckets::bucket_count() const {
  return static_cast<int64_t>(state_->schedule.bucket_count());
}

void GradientBuckets::prepare() {
  State& s = *state_;
  for (auto& pending : s.pending) pending.reset();
  s.schedule.reset();
  s.active = true;
}

void GradientBuckets::finish() {
  State& s = *state_;
  s.active = false;
  torch::NoGradGuard no_grad;
  const BucketRange rest = s.schedule.finish();
  s.zero_missing(rest);
  s.launch(rest);
  const int ranks = s.comm->size();
  for (std::size_t b = 0; b < s.flats.size(); ++b) {
    s.pending[b]->wait();
    if (ranks > 1) s.flats[b].div_(ranks);
    for (std::size_t k : s.schedule.parameters_in(b))
      if (s.schedule.received(k)) s.write_average(k);
  }
}

}  // namespace e2e
