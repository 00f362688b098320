// Positions a transaction holds in flight, by subtransaction (DESIGN.md section 4).
#include "everest/core.hpp"

#include <algorithm>

namespace everest {

void InFlightPositions::drawn(std::uint32_t subxact, std::int64_t first) {
  for (Entry& e : entries_) {
    if (e.subxact == subxact) {
      e.first = std::min(e.first, first);
      return;
    }
  }
  entries_.push_back(Entry{subxact, first});
}

void InFlightPositions::subcommit(std::uint32_t subxact, std::uint32_t parent) {
  auto child = std::find_if(entries_.begin(), entries_.end(),
                            [&](const Entry& e) { return e.subxact == subxact; });
  if (child == entries_.end()) return;
  // No allocation here: this runs while a subtransaction commits and must not fail.
  auto into = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return e.subxact == parent; });
  if (into == entries_.end()) {
    child->subxact = parent;
  } else {
    into->first = std::min(into->first, child->first);
    entries_.erase(child);
  }
}

void InFlightPositions::subabort(std::uint32_t subxact) {
  // Children of `subxact` that are still listed have ids above it (they started later and
  // have not committed into it yet); when it aborts, they are gone too.
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Entry& e) { return e.subxact >= subxact; }),
                 entries_.end());
}

std::int64_t InFlightPositions::lowest() const {
  std::int64_t low = 0;
  for (const Entry& e : entries_)
    if (low == 0 || e.first < low) low = e.first;
  return low;
}

}  // namespace everest
