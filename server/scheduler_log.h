// `--log-level debug`: the scheduler's decisions, sampled from its stats on a thread of our
// own at a bounded rate (at most a line per interval, none while it is idle), so the engine
// needs no logging hook and a busy server cannot flood its log.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/serving/scheduler.h"

namespace grinqh {

class SchedulerLog {
 public:
  // Starts the thread only when debug lines are enabled.
  SchedulerLog(const Scheduler& scheduler, std::chrono::milliseconds interval);
  ~SchedulerLog();
  SchedulerLog(const SchedulerLog&) = delete;
  SchedulerLog& operator=(const SchedulerLog&) = delete;

 private:
  void Run(const Scheduler& scheduler, std::chrono::milliseconds interval);

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace grinqh
