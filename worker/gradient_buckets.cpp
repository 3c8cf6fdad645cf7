#include "worker/gradient_buckets.hpp"

namespace e2e {

struct GradientBuckets::State {
  struct Bucket {
    std::vector<std::size_t> parameters;
    std::vector<int64_t> offsets;
    torch::Tensor flat;
    std::size_t ready = 0;
    std::unique_ptr<PendingCollective> pending;
  };

  Communicator* comm = nullptr;
  std::vector<torch::Tensor> parameters;
  std::vector<std::size_t> bucket_of;  // parameter → bucket
  std::vector<int64_t> offset_of;      // parameter → offset in its bucket
  std::vector<bool> received;          // parameter got a gradient this step
  std::vector<Bucket> buckets;
  std::size_t next_launch = 0;
  bool active = false;

  void on_gradient(std::size_t index, const torch::Tensor& gradient) {
    if (!active) return;
    TORCH_CHECK(!received[index], "gradient bucketing: parameter ", index,
                " received two gradients in one step");
    Bucket& bucket = buckets[bucket_of[index]];
    bucket.flat.narrow(0, offset_of[index], gradient.numel()).copy_(gradient.reshape({-1}));
    received[index] = true;
    ++bucket.ready;
    launch_complete_buckets_in_order();
  }

  void launch(Bucket& bucket) { bucket.pending = comm->start_all_reduce_sum(bucket.flat); }

  void launch_complete_buckets_in_order() {
    while (next_launch < buckets.size() &&
           buckets[next_launch].ready == buckets[next_launch].parameters.size())
      launch(buckets[next_launch++]);
  }
};

GradientBuckets::GradientBuckets(const std::vector<torch::Tensor>& parameters, Communicator& comm,
                                 int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.comm = &comm;
  s.parameters = parameters;
  s.bucket_of.resize(parameters.size());
  s.offset_of.resize(parameters.size());
  s.received.assign(parameters.size(), false);
  int64_t bucket_elements = 0;
  for (std::size_t k = parameters.size(); k-- > 0;) {
    const torch::Tensor& p = parameters[k];
    if (s.buckets.empty() || bucket_elements * p.element_size() >= bucket_bytes) {
      s.buckets.emplace_back();
      bucket_elements = 0;
    }
    State::Bucket& bucket = s.buckets.back();
    s.bucket_of[k] = s.buckets.size() - 1;
    s.offset_of[k] = bucket_elements;
    bucket.parameters.push_back(k);
    bucket.offsets.push_back(bucket_elements);
    bucket_elements += p.numel();
    bucket.flat = torch::Tensor();  // sized below
  }
  for (State::Bucket& bucket : s.buckets) {
    int64_t elements = 0;
    for (std::size_t k : bucket.parameters) elements += parameters[k].numel();
    bucket.flat =
        torch::zeros({elements}, parameters[bucket.parameters.front()].options().requires_grad(false));
  }
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
  return static_cast<int64_t>(state_->buckets.size());
}

void GradientBuckets::prepare() {
  State& s = *state_;
  for (State::Bucket& bucket : s.buckets) {
    bucket.flat.zero_();
    bucket.ready = 0;
    bucket.pending.reset();
  }
  std::fill(s.received.begin(), s.received.end(), false);
  s.next_launch = 0;
  s.active = true;
}

void GradientBuckets::finish() {
  State& s = *state_;
  s.active = false;
  // Parameters without a gradient this step (e.g. unused heads) contribute zeros; every rank has the same
  // graph, so the same ones are missing everywhere.
  while (s.next_launch < s.buckets.size()) s.launch(s.buckets[s.next_launch++]);
  torch::NoGradGuard no_grad;
  const double ranks = s.comm->size();
  for (State::Bucket& bucket : s.buckets) {
    bucket.pending->wait();
    bucket.flat.div_(ranks);
    for (std::size_t i = 0; i < bucket.parameters.size(); ++i) {
      const std::size_t k = bucket.parameters[i];
      if (!s.received[k]) continue;
      torch::Tensor p = s.parameters[k];
      p.mutable_grad().copy_(bucket.flat.narrow(0, bucket.offsets[i], p.numel()).view_as(p));
    }
  }
}

}  // namespace e2e
