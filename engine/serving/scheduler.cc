#include "engine/serving/scheduler.h"

#include <algorithm>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace grinqh {

namespace {

// Blocks of the backend's KV pool that `tokens` positions fill.
int64_t BlocksFor(const Backend& backend, int64_t tokens) {
  const int64_t block = backend.kv_block_tokens();
  return (tokens + block - 1) / block;
}

}  // namespace

// One request, from Submit to its final event. Held by pointer: the stream refers to the request.
struct Scheduler::Sequence {
  Sequence(Model& model, GenerationRequest generation_request, EventCallback callback, float bits)
      : request(std::move(generation_request)),
        on_event(std::move(callback)),
        stream(model, request),
        kv_tokens(static_cast<int64_t>(request.prompt_ids.size()) + MaxNewTokens(model.config(), request)),
        kv_blocks(BlocksFor(model.backend(), kv_tokens)) {
    usage.prompt_tokens = static_cast<int>(request.prompt_ids.size());
    usage.effective_bits = bits;
  }
  bool reading_prompt() const { return prefilled < usage.prompt_tokens; }
  double SecondsSinceSubmit(Clock::time_point now) const { return std::chrono::duration<double>(now - submitted).count(); }

  RequestId id = 0;
  const GenerationRequest request;
  EventCallback on_event;
  TokenStream stream;
  // Reserved in the budget while running: prompt + max new tokens, and the blocks of the
  // backend's KV pool they fill (admission counts blocks, so what it admits always finds them).
  const int64_t kv_tokens;
  const int64_t kv_blocks;
  const Clock::time_point submitted = Clock::now();
  std::unique_ptr<KvCache> cache;  // while running
  int prefilled = 0;               // prompt tokens in the cache
  Usage usage;
};

struct Scheduler::Delivery {
  Sequence* sequence;
  StreamEvent event;
};

namespace {

// A GRINQH model decodes at full depth reading its stored planes, a fixed-width baseline its
// codes; a plain one reads its dtype.
float FullDepthBits(const Model& model) {
  if (model.max_decode_bits() > 0) return static_cast<float>(model.max_decode_bits());
  if (const PlaneWeights* p = model.weights().lm_head.planes()) return static_cast<float>(p->planes.shape.code_bits);
  return static_cast<float>(8 * DTypeSize(model.weights().lm_head.dense()->dtype));
}

}  // namespace

Scheduler::Scheduler(Model& model, SchedulerOptions options)
    : model_(model),
      options_(options),
      full_depth_bits_(FullDepthBits(model)),
      kv_budget_blocks_(std::min(options.kv_budget_tokens, model.backend().kv_capacity_tokens()) /
                        model.backend().kv_block_tokens()),
      kv_budget_tokens_(kv_budget_blocks_ * model.backend().kv_block_tokens()),
      thread_([this] { Loop(); }) {
  std::lock_guard lock(mutex_);
  stats_.kv_budget_tokens = kv_budget_tokens_;
}

Scheduler::~Scheduler() {
  Shutdown(std::chrono::milliseconds(0));
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

absl::StatusOr<Scheduler::RequestId> Scheduler::Submit(GenerationRequest request, EventCallback on_event) {
  GRINQH_RETURN_IF_ERROR(ValidateRequest(model_, request));
  const float bits = request.decode_bits != 0.f ? request.decode_bits : full_depth_bits_;
  auto sequence = std::make_unique<Sequence>(model_, std::move(request), std::move(on_event), bits);
  if (sequence->kv_blocks > kv_budget_blocks_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the request needs ", sequence->kv_tokens, " KV cache tokens (prompt + max_tokens, within the context; ",
        sequence->kv_blocks * model_.backend().kv_block_tokens(), " in whole blocks), more than the scheduler's whole "
        "budget of ", kv_budget_tokens_));
  }
  std::lock_guard lock(mutex_);
  if (!accepting_) return absl::UnavailableError("the scheduler is shutting down and takes no new requests");
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the admission queue is full (", queue_.size(), " requests waiting); try again later"));
  }
  sequence->id = next_id_++;
  const RequestId id = sequence->id;
  queue_.push_back(std::move(sequence));
  stats_.queued = static_cast<int>(queue_.size());
  ++live_;
  wake_.notify_all();
  return id;
}

void Scheduler::Cancel(RequestId id) {
  std::lock_guard lock(mutex_);
  cancels_.push_back(id);
}

void Scheduler::Shutdown(std::chrono::milliseconds grace) {
  std::unique_lock lock(mutex_);
  accepting_ = false;
  if (drained_.wait_for(lock, grace, [this] { return live_ == 0; })) return;
  cancel_all_ = true;
  wake_.notify_all();
  drained_.wait(lock, [this] { return live_ == 0; });
}

void Scheduler::CancelAll() {
  {
    std::lock_guard lock(mutex_);
    accepting_ = false;
    cancel_all_ = true;
  }
  wake_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void Scheduler::Loop() {
  for (;;) {
    std::vector<std::unique_ptr<Sequence>> ended;  // kept until their final events are delivered
    std::vector<Delivery> events;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stop_ || !queue_.empty() || !running_.empty(); });
      if (stop_ && queue_.empty() && running_.empty()) return;
      EndCancelled(ended, events);
      Admit();
    }
    if (!running_.empty()) Step(ended, events);
    // Callbacks run without the lock, so they may call Submit, Cancel and stats.
    for (Delivery& delivery : events) {
      if (delivery.sequence->on_event) delivery.sequence->on_event(delivery.event);
    }
    if (!ended.empty()) {
      std::lock_guard lock(mutex_);
      live_ -= static_cast<int>(ended.size());
      if (live_ == 0) drained_.notify_all();
    }
  }
}

void Scheduler::EndCancelled(std::vector<std::unique_ptr<Sequence>>& ended, std::vector<Delivery>& events) {
  const auto cancelled = [this](const std::unique_ptr<Sequence>& s) {
    return cancel_all_ || std::find(cancels_.begin(), cancels_.end(), s->id) != cancels_.end();
  };
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (!cancelled(*it)) {
      ++it;
      continue;
    }
    (*it)->usage.queue_seconds = (*it)->SecondsSinceSubmit(Clock::now());
    events.push_back(End(**it, FinishReason::kCancelled, {}));
    ended.push_back(std::move(*it));
    it = queue_.erase(it);
  }
  stats_.queued = static_cast<int>(queue_.size());
  for (auto it = running_.begin(); it != running_.end();) {
    if (!cancelled(*it)) {
      ++it;
      continue;
    }
    // What was held back (a split character, a partial stop string) still ends the text.
    events.push_back(End(**it, FinishReason::kCancelled, (*it)->stream.ReleaseHeld()));
    it = Release(ended, it);
  }
  cancels_.clear();
}

void Scheduler::Admit() {
  const int max_batch = std::max(1, options_.max_batch_size);
  while (!queue_.empty() && static_cast<int>(running_.size()) < max_batch &&
         kv_blocks_reserved_ + queue_.front()->kv_blocks <= kv_budget_blocks_) {
    std::unique_ptr<Sequence> sequence = std::move(queue_.front());
    queue_.pop_front();
    sequence->usage.queue_seconds = sequence->SecondsSinceSubmit(Clock::now());
    sequence->cache = model_.backend().NewCache();
    stats_.kv_tokens_reserved += sequence->kv_tokens;
    kv_blocks_reserved_ += sequence->kv_blocks;
    running_.push_back(std::move(sequence));
  }
  stats_.queued = static_cast<int>(queue_.size());
  stats_.running = static_cast<int>(running_.size());
}

void Scheduler::Step(std::vector<std::unique_ptr<Sequence>>& ended, std::vector<Delivery>& events) {
  // Decodes first, one token each, so running streams never wait; prompts then fill what
  // is left of the step in chunks.
  std::vector<ForwardItem> items;
  std::vector<Sequence*> owners;
  int room = std::max(options_.max_step_tokens, static_cast<int>(running_.size()));
  for (const auto& s : running_) {
    if (s->reading_prompt()) continue;
    items.push_back({s->cache.get(), std::span<const int32_t>(&s->stream.tokens().back(), 1), Logits::kLast,
                     s->request.decode_bits});
    owners.push_back(s.get());
    --room;
  }
  const size_t decodes = items.size();
  for (const auto& s : running_) {
    if (!s->reading_prompt()) continue;
    const int n = std::min({std::max(1, options_.prefill_chunk), s->usage.prompt_tokens - s->prefilled, room});
    if (n <= 0) break;
    // Only a prompt's last chunk needs logits: the others skip the LM head.
    const bool last_chunk = s->prefilled + n == s->usage.prompt_tokens;
    items.push_back({s->cache.get(), std::span<const int32_t>(s->request.prompt_ids).subspan(s->prefilled, n),
                     last_chunk ? Logits::kLast : Logits::kNone});
    owners.push_back(s.get());
    room -= n;
  }
  const absl::Status status = model_.backend().Forward(items, logits_);
  const auto now = Clock::now();

  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  float bits_sum = 0.f;
  int batch_tokens = 0;
  size_t logit_row = 0;
  std::vector<Sequence*> finished;
  for (size_t i = 0; i < items.size(); ++i) {
    Sequence& s = *owners[i];
    batch_tokens += static_cast<int>(items[i].tokens.size());
    if (!status.ok()) {
      events.push_back(End(s, FinishReason::kCancelled, {}, status));
      finished.push_back(&s);
      continue;
    }
    if (i < decodes) {
      bits_sum += s.usage.effective_bits;
    } else {
      s.prefilled += static_cast<int>(items[i].tokens.size());
      if (s.reading_prompt()) continue;  // a chunk: its logits are not needed
    }
    const TokenStream::Step step = s.stream.Next(std::span<const float>(logits_).subspan(logit_row++ * vocab, vocab));
    if (i >= decodes) s.usage.time_to_first_token_seconds = s.SecondsSinceSubmit(now);  // the prompt's last chunk
    s.usage.completion_tokens = static_cast<int>(s.stream.tokens().size());
    Delivery delivery{&s, {}};
    if (step.finished) {
      delivery = End(s, step.finish_reason, step.text + step.tail);
      finished.push_back(&s);
    } else {
      delivery.event.text = step.text;
      delivery.event.usage = s.usage;
    }
    if (step.token) delivery.event.tokens = {*step.token};
    if (step.logprobs) delivery.event.logprobs = {*step.logprobs};
    events.push_back(std::move(delivery));
  }

  std::lock_guard lock(mutex_);
  ++stats_.steps;
  stats_.decode_bits_in_use = decodes > 0 ? bits_sum / static_cast<float>(decodes) : 0.f;
  stats_.batch_sequences = static_cast<int>(items.size());
  stats_.batch_tokens = batch_tokens;
  for (Sequence* s : finished) {
    Release(ended, std::find_if(running_.begin(), running_.end(), [s](const auto& r) { return r.get() == s; }));
  }
}

Scheduler::Delivery Scheduler::End(Sequence& sequence, FinishReason reason, std::string text, absl::Status status) {
  StreamEvent event;
  event.text = std::move(text);
  event.finished = true;
  event.finish_reason = reason;
  event.usage = sequence.usage;
  event.status = std::move(status);
  return {&sequence, std::move(event)};
}

Scheduler::Running::iterator Scheduler::Release(std::vector<std::unique_ptr<Sequence>>& ended, Running::iterator it) {
  (*it)->cache.reset();  // the KV cache goes now, before the final event is delivered
  stats_.kv_tokens_reserved -= (*it)->kv_tokens;
  kv_blocks_reserved_ -= (*it)->kv_blocks;
  ended.push_back(std::move(*it));
  it = running_.erase(it);
  stats_.running = static_cast<int>(running_.size());
  return it;
}

}  // namespace grinqh
