// Helpers shared by the core unit tests.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>
#include <string_view>

#include "everest/core.hpp"

namespace everest_test {

// What a call threw: an everest::Error's fields, or a marker for "nothing" / "something else".
struct Thrown {
  std::string sqlstate;  // "" when nothing was thrown; "not everest::Error" for other exceptions
  std::string message;
  std::string detail;
  std::string hint;
};

// Runs `body` and reports what it threw.
template <typename F>
Thrown ErrorOf(F&& body) {
  try {
    body();
  } catch (const everest::Error& e) {
    return Thrown{e.sqlstate(), e.what(), e.detail(), e.hint()};
  } catch (const std::exception& e) {
    return Thrown{"not everest::Error", e.what(), {}, {}};
  } catch (...) {
    return Thrown{"not everest::Error", "unknown exception", {}, {}};
  }
  return Thrown{};
}

// EXPECT_TRUE(Contains(text, part)) prints both strings when it fails.
inline ::testing::AssertionResult Contains(std::string_view text, std::string_view part) {
  if (text.find(part) != std::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

}  // namespace everest_test
