#include "server/scheduler_log.h"

#include "server/log.h"

namespace grinqh {

SchedulerLog::SchedulerLog(const Scheduler& scheduler, std::chrono::milliseconds interval) {
  if (LogEnabled(LogLevel::kDebug)) thread_ = std::thread([this, &scheduler, interval] { Run(scheduler, interval); });
}

SchedulerLog::~SchedulerLog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SchedulerLog::Run(const Scheduler& scheduler, std::chrono::milliseconds interval) {
  int64_t last_steps = 0;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval, [this] { return stop_; })) {
    const SchedulerStats stats = scheduler.stats();
    if (stats.steps == last_steps && stats.queued == 0) continue;  // idle: nothing decided
    LogLine(LogLevel::kDebug, "scheduler",
            {{"steps", stats.steps},
             {"steps_since_last", stats.steps - last_steps},
             {"queued", stats.queued},
             {"running", stats.running},
             {"batch_sequences", stats.batch_sequences},
             {"batch_tokens", stats.batch_tokens},
             {"decode_bits", stats.decode_bits_in_use},
             {"kv_tokens_reserved", stats.kv_tokens_reserved},
             {"kv_budget_tokens", stats.kv_budget_tokens}});
    last_steps = stats.steps;
  }
}

}  // namespace grinqh
