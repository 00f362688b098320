// Notification payloads and handler lease keys (src/core/render.cpp).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "everest/core.hpp"

namespace everest {
namespace {

// Parses a payload and returns its "position", failing the test on any other shape.
std::int64_t PositionOf(const std::string& payload) {
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(payload, ec);
  EXPECT_FALSE(ec) << payload;
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << payload;
    return -999;
  }
  const boost::json::object& o = v.get_object();
  EXPECT_EQ(o.size(), 1u) << payload;
  const boost::json::value* position = o.if_contains("position");
  if (!position || !position->is_int64()) {
    ADD_FAILURE() << "no integer \"position\": " << payload;
    return -999;
  }
  return position->get_int64();
}

TEST(RenderNotification, IsAPositionObject) {
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{42}, std::int64_t{1} << 40,
                         std::numeric_limits<std::int64_t>::max()})
    EXPECT_EQ(PositionOf(render_notification(n)), n) << n;
}

TEST(RenderNotification, FitsAPostgresNotifyPayload) {
  // NOTIFY payloads must stay under 8000 bytes; ours is tiny.
  EXPECT_LT(render_notification(std::numeric_limits<std::int64_t>::max()).size(), 64u);
}

TEST(HandlerLeaseKey, Fnv1a64KnownVectors) {
  EXPECT_EQ(lock_key(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(lock_key("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(lock_key("foobar"), 0x85944171f73967e8ull);
}

TEST(HandlerLeaseKey, HashesBytesNotCharacters) {
  // Bytes >= 0x80 must be hashed unsigned: FNV-1a of the single byte 0xff.
  std::uint64_t expected = (0xcbf29ce484222325ull ^ 0xffull) * 0x100000001b3ull;
  EXPECT_EQ(lock_key(std::string(1, '\xff')), expected);
}

TEST(HandlerLeaseKey, DistinguishesNamesAndEmbeddedNul) {
  EXPECT_NE(lock_key("projection-a"), lock_key("projection-b"));
  EXPECT_NE(lock_key(std::string("a\0b", 3)), lock_key("a"));
  EXPECT_EQ(lock_key("orders"), lock_key(std::string("orders")));
}

}  // namespace
}  // namespace everest
