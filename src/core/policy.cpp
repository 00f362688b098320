// Small decisions the glue used to make itself: the window of a read (README.md, "Reading")
// and the notifier's pacing (README.md, "Notifications and the subscriber protocol").
#include "everest/core.hpp"

#include <algorithm>

namespace everest {

ReadWindow read_window(bool forward, std::int64_t from, std::int64_t upto) {
  ReadWindow w{from, upto, false};
  if (forward) {
    w.empty = from > upto;  // nothing at or after `from` is readable yet
  } else if (from >= 0) {
    w.upto = std::min(from, upto);  // backward from `from`; -1: from the end (upto)
  }
  return w;
}

NotifierStep notifier_step(const NotifierFacts& f) {
  NotifierStep s;
  s.worked = f.moved || f.woken;
  // Idle, and nobody holds positions in flight: leave; the next append starts a notifier again.
  // While someone holds them, stay: their commit, however late, must be published (for standbys
  // and mirrors) and announced, and the transaction that drew them counted on this notifier.
  if (!s.worked && !f.holders_seen) s.leave = f.ms_since_work >= kNotifierIdleMs;
  // Coalesce: commits that arrive during the pause after a move are announced together.
  if (f.moved && f.min_interval_ms > 0) s.pause_ms = f.min_interval_ms;
  return s;
}

WaiterWake waiter_wake(const WaiterWakeFacts& f) {
  WaiterWake w;
  std::int64_t beat = f.min_interval_ms > 0 ? f.min_interval_ms : 0;
  if (f.wakeups_per_second > 0 && f.waiters > 0) {
    // ceil(waiters / budget seconds), capped so that a crowd of waiters is still woken each second
    const std::int64_t share = (static_cast<std::int64_t>(f.waiters) * 1000 + f.wakeups_per_second - 1) /
                               f.wakeups_per_second;
    beat = std::max(beat, std::min<std::int64_t>(share, kWaiterBeatMaxMs));
  }
  w.beat_ms = static_cast<int>(beat);
  if (!f.pending) return w;
  if (f.ms_since_wake >= beat || f.waiters == 0)
    w.wake = true;
  else
    w.due_in_ms = static_cast<int>(beat - f.ms_since_wake);
  return w;
}

}  // namespace everest
