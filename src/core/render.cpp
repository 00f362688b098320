// Notification payloads and lock keys.
#include "everest/core.hpp"

#include <boost/json.hpp>

namespace everest {

std::string render_notification(std::int64_t position) {
  boost::json::object payload;
  payload["position"] = position;
  return boost::json::serialize(payload);
}

std::uint64_t lock_key(std::string_view name) {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a offset basis
  for (unsigned char c : name) {
    hash ^= c;
    hash *= 1099511628211ull;  // FNV prime
  }
  return hash;
}

}  // namespace everest
