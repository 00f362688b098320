// Handler saves, leases and waits: the rules of docs/topologies.md ("Exactly once without a
// lease", "Leases that work everywhere", "Waking up without LISTEN"). The glue gathers the facts
// under the row locks; these functions decide and word the errors.
#include "everest/core.hpp"

#include <algorithm>

namespace everest {

namespace {

std::string quoted(std::string_view name) { return "\"" + std::string(name) + "\""; }

std::string who(const SaveFacts& f) {
  return "handler " + quoted(f.handler) + " member " + std::to_string(f.member);
}

}  // namespace

std::int32_t stream_partition(std::string_view stream, std::int32_t members) {
  if (members < 1 || members > kMaxHandlerMembers)
    throw Error(sqlstate::invalid_parameter_value,
                "members must be between 1 and " + std::to_string(kMaxHandlerMembers) + ", got " +
                    std::to_string(members));
  if (stream.empty()) throw Error(sqlstate::invalid_parameter_value, "stream name must not be empty");
  return static_cast<std::int32_t>(lock_key(stream) % static_cast<std::uint64_t>(members));
}

void check_member(std::string_view handler, std::int32_t member, std::int32_t members) {
  if (member < 0 || member >= members)
    throw Error(sqlstate::invalid_parameter_value,
                "member " + std::to_string(member) + " is out of range for handler " + quoted(handler),
                "The handler has " + std::to_string(members) + " member" + (members == 1 ? "" : "s") +
                    ", numbered from 0.",
                members == 1 ? "everest.resize_handler() makes a group of several members." : "");
}

ResizePlan plan_resize(std::string_view handler, std::int32_t old_members, std::int32_t new_members,
                       const std::int64_t* old_positions, std::size_t n_positions) {
  if (new_members < 1 || new_members > kMaxHandlerMembers)
    throw Error(sqlstate::invalid_parameter_value,
                "members must be between 1 and " + std::to_string(kMaxHandlerMembers) + ", got " +
                    std::to_string(new_members),
                "Handler " + quoted(handler) + " was not resized.");
  ResizePlan p;
  p.change = new_members != old_members;
  if (!p.change) return p;
  std::int64_t lo = 0, hi = 0;
  for (std::size_t i = 0; i < n_positions; i++) {
    lo = i == 0 ? old_positions[i] : std::min(lo, old_positions[i]);
    hi = i == 0 ? old_positions[i] : std::max(hi, old_positions[i]);
  }
  // A member with no row (a group of one never saved) is at 0.
  if (n_positions < static_cast<std::size_t>(old_members)) lo = std::min<std::int64_t>(lo, 0);
  p.start = lo;
  p.floors = hi > lo;
  return p;
}

void check_save(const SaveFacts& f) {
  check_member(f.handler, f.member, f.members);
  // Fencing first: a runner whose lease is gone must not write, whatever it read.
  if (f.lease_given && !(f.lease_row_matches && f.lease_live))
    throw Error(sqlstate::lease_lost, "lease lost: " + who(f) + " is not held by this lease",
                f.lease_row_matches ? "The lease expired." : "Another runner acquired the member, or the lease was released.",
                "Roll back, then acquire the lease again and read from the checkpoint.");
  if (!f.lease_given && f.lease_live)
    throw Error(sqlstate::lease_lost, who(f) + " is leased; a save must name the lease",
                "Another runner holds a live lease on this member.",
                "Pass lease => the token acquire_lease returned, or wait until the lease ends.");
  if (f.expected_given && f.expected != f.stored)
    throw Error(sqlstate::handler_position_not_forward,
                "handler " + quoted(f.handler) + " checkpoint is " + std::to_string(f.stored) +
                    ", not the expected " + std::to_string(f.expected),
                "The events were read from a checkpoint that has moved since; another runner saved.",
                "Roll back this transaction and read again from the checkpoint.");
  if (f.read_in_transaction && f.moved_since_read)
    throw Error(sqlstate::handler_position_not_forward,
                "handler " + quoted(f.handler) + " checkpoint moved since this transaction read from it",
                "Another runner saved or reset the checkpoint after read_handler_events; these events may "
                "have been applied already.",
                "Roll back this transaction and read again from the checkpoint.");
  if (f.position <= f.stored)
    throw Error(sqlstate::handler_position_not_forward,
                "handler " + quoted(f.handler) + " position " + std::to_string(f.position) +
                    " does not move forward from " + std::to_string(f.stored),
                "This batch was most likely applied already; roll back this transaction.",
                "Use everest.reset_handler() to rewind on purpose.");
}

void check_handler_read(bool after_given, std::int64_t after, bool types_given, std::size_t n_types,
                        bool types_have_null) {
  if (after_given && after < 0)
    throw Error(sqlstate::invalid_parameter_value, "after must be >= 0, got " + std::to_string(after));
  if (!types_given) return;
  if (n_types == 0)
    throw Error(sqlstate::invalid_parameter_value, "types must not be empty",
                "An empty list would take no event.", "Pass NULL to take events of every type.");
  if (types_have_null)
    throw Error(sqlstate::null_value_not_allowed, "types must not contain NULL");
}

void check_lease_ttl(std::int64_t ttl_us, bool has_months) {
  if (has_months || ttl_us <= 0 || ttl_us > 86'400'000'000LL)
    throw Error(sqlstate::invalid_parameter_value,
                "lease ttl must be positive and at most 1 day, in days, hours, minutes or seconds");
}

void check_wait(std::int64_t after, std::int64_t timeout_ms, std::int64_t own_lowest_in_flight) {
  if (timeout_ms < 0)
    throw Error(sqlstate::invalid_parameter_value,
                "timeout_ms must be >= 0, got " + std::to_string(timeout_ms));
  if (own_lowest_in_flight != 0 && after >= own_lowest_in_flight - 1)
    throw Error(sqlstate::object_not_in_prerequisite_state,
                "wait_for_position would wait for this session's own append",
                "This transaction holds position " + std::to_string(own_lowest_in_flight) +
                    " in flight; safe_position() cannot pass " + std::to_string(own_lowest_in_flight - 1) +
                    " before it commits.",
                "Commit or roll back the append first.");
}

}  // namespace everest
