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
  if (!s.worked && !(f.holders_seen && f.idle_timeout_enforced))
    s.leave = f.ms_since_work >= kNotifierIdleMs;  // the next append starts a notifier again
  // Coalesce: commits that arrive during the pause after a move are announced together.
  if (f.moved && f.min_interval_ms > 0) s.pause_ms = f.min_interval_ms;
  return s;
}

}  // namespace everest
