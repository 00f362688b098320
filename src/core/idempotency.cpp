// Idempotent retries by event id (DESIGN.md section 2, Append).
#include "everest/core.hpp"

#include <algorithm>
#include <string>

namespace everest {

namespace {

[[noreturn]] void reused(const Uuid& id, const std::string& why) {
  throw Error(sqlstate::duplicate_event_id,
              "event id " + format_uuid(id) + " is already stored",
              why,
              "Retry a batch with exactly the same events and expected version, or use new ids.");
}

}  // namespace

AppendResult match_idempotent_retry(std::string_view stream,
                                    const std::vector<std::optional<Uuid>>& requested,
                                    std::int64_t expected, std::vector<StoredEvent> stored) {
  (void)stream;
  std::sort(stored.begin(), stored.end(),
            [](const StoredEvent& a, const StoredEvent& b) { return a.id < b.id; });
  auto find = [&](const Uuid& id) {
    auto it = std::lower_bound(stored.begin(), stored.end(), id,
                               [](const StoredEvent& s, const Uuid& key) { return s.id < key; });
    return it != stored.end() && it->id == id ? it : stored.end();
  };
  // The first stored id tells which event of the batch we compare from.
  const StoredEvent* first = nullptr;
  for (std::size_t k = 0; k < requested.size(); k++) {
    if (!requested[k]) continue;
    auto it = find(*requested[k]);
    if (it == stored.end()) continue;
    if (!it->same_stream) reused(it->id, "It belongs to another stream.");
    if (!first) first = &*it;
  }
  if (!first) throw Error(sqlstate::internal_error, "idempotency check called without stored ids");

  AppendResult result{};
  for (std::size_t k = 0; k < requested.size(); k++) {
    if (!requested[k]) reused(first->id, "The batch is not a retry: event " + std::to_string(k) +
                                             " has no id, so it was not part of the stored batch.");
    auto it = find(*requested[k]);
    if (it == stored.end())
      reused(first->id, "The batch is not a retry: event " + std::to_string(k) +
                            " (id " + format_uuid(*requested[k]) + ") is not stored.");
    if (k == 0) {
      result.first_version = it->version;
      result.first_position = it->position;
    } else if (it->version != result.first_version + static_cast<std::int64_t>(k)) {
      reused(it->id, "The batch is not a retry: its events are stored in another order or not "
                     "as one contiguous run.");
    }
    result.last_version = it->version;
    result.last_position = it->position;
  }
  bool placed = expected == kExpectAny ||
                (expected == kExpectStreamExists && result.first_version >= 1) ||
                (expected == kExpectNoStream && result.first_version == 0) ||
                (expected >= 0 && result.first_version == expected + 1);
  if (!placed)
    reused(first->id, "The stored batch starts at version " + std::to_string(result.first_version) +
                          ", not right after expected version " + std::to_string(expected) + ".");
  return result;
}

}  // namespace everest
