// Epochs and completed positions: the rules of docs/topologies.md, "Failover".
#include "everest/core.hpp"

#include <algorithm>

namespace everest {

EpochPlan plan_epoch(const EpochFacts& f) {
  EpochPlan p;
  if (f.have_latest && f.same_node) return p;  // this node appends in the latest epoch already
  const std::int64_t assigned = std::max(f.max_stored, f.sequence_last);
  if (!f.have_latest) {
    // The first epoch row of a store (a new install, or one updated from 0.3.0): no jump, but the
    // sequence is never behind what is stored (a mirror's sequence is not replicated).
    p.insert = true;
    p.epoch = epoch_of(assigned);
    p.first_position = p.epoch == 0 ? 1 : (static_cast<std::int64_t>(p.epoch) << kEpochBits) + 1;
    if (f.sequence_last < f.max_stored) p.sequence_to = f.max_stored;
    return p;
  }
  // Another node appended last: a promotion, a cutover, a restore. A previous attempt that rolled
  // back may have moved the sequence into the next epoch already: reuse that epoch.
  const std::int32_t base = std::max(f.latest_epoch, epoch_of(f.max_stored));
  p.insert = true;
  if (epoch_of(f.sequence_last) > base) {
    p.epoch = epoch_of(f.sequence_last);
  } else {
    p.epoch = base + 1;
    p.sequence_to = static_cast<std::int64_t>(p.epoch) << kEpochBits;
  }
  if (p.epoch >= kMaxEpochs)
    throw Error(sqlstate::object_not_in_prerequisite_state, "everest has used all its position epochs",
                "Positions stay below 2^53; each promotion or cutover starts one of " +
                    std::to_string(kMaxEpochs) + " epochs.",
                "Dump the store and restore it into a new database.");
  p.first_position = (static_cast<std::int64_t>(p.epoch) << kEpochBits) + 1;
  // Everything up to the last horizon received is here and final; so is an unbroken run of
  // stored positions right above it (replicated commits: under synchronous replication, usually
  // everything a reader saw). Above the first hole, an event the old primary committed may be
  // missing here: that is where the lost range starts.
  p.lost = true;
  p.lost_after = std::max(f.published_horizon, f.present_through);
  return p;
}

void check_completed(std::int64_t checkpoint, const LostRange* ranges, std::size_t n_ranges,
                     bool know_assigned, std::int64_t last_assigned) {
  if (checkpoint <= 0) return;
  for (std::size_t i = 0; i < n_ranges; i++) {
    const LostRange& r = ranges[i];
    if (r.after < checkpoint && checkpoint < r.before - 1)
      throw Error(sqlstate::position_never_completed,
                  "position " + std::to_string(checkpoint) + " is in a range this store never completed",
                  "Positions after " + std::to_string(r.after) + " were assigned by an earlier primary and "
                      "did not all reach this one (a failover or cutover); this store continues at " +
                      std::to_string(r.before) + ". The reader may hold events this store does not have.",
                  "Rebuild the reader (reset_handler) or reconcile it, then continue from position " +
                      std::to_string(r.after) + ".");
  }
  if (know_assigned && checkpoint > last_assigned)
    throw Error(sqlstate::position_never_completed,
                "position " + std::to_string(checkpoint) + " is beyond anything this store assigned",
                "The last position assigned here is " + std::to_string(last_assigned) + ".",
                "The checkpoint belongs to another store or a lost history: rebuild the reader.");
}

}  // namespace everest
