// Event data schemas (src/core/schema.cpp, src/core/json_document.cpp, docs/schemas.md): exact
// numbers, the Builder, every keyword both ways, the order of violations, compile errors, and the
// C API the glue calls.
#include "everest/schema.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "everest/capi.h"
#include "test_util.hpp"

namespace everest::schema {
namespace {

using everest_test::Contains;
using everest_test::ErrorOf;

constexpr const char* k22023 = "22023";

Validator Compile(std::string_view schema) { return Validator::compile(parse_document(schema)); }

// The validator's answer, after checking that the StreamChecker (the appends' fast path) agrees
// with it, walking every member and taking its shortcuts: every case below is also a case of the
// StreamChecker.
std::optional<Violation> Validate(std::string_view schema, std::string_view doc) {
  const Validator v = Compile(schema);
  const Document d = parse_document(doc);
  std::optional<Violation> out = v.validate(d);
  StreamChecker c;
  EXPECT_EQ(stream_check(c, v, d, false), !out) << "stream checker, every member: " << schema << " with " << doc;
  EXPECT_EQ(stream_check(c, v, d, true), !out) << "stream checker, shortcuts: " << schema << " with " << doc;
  return out;
}

// "" when `doc` satisfies `schema`, otherwise the message of the first violation.
std::string Check(std::string_view schema, std::string_view doc) {
  std::optional<Violation> v = Validate(schema, doc);
  return v ? v->message : "";
}

std::optional<Violation> First(std::string_view schema, std::string_view doc) { return Validate(schema, doc); }

everest_test::Thrown CompileError(std::string_view schema) {
  return ErrorOf([&] { Compile(schema); });
}

// --- Number --------------------------------------------------------------------------------

// Exponents beyond 10^15 saturate there, and a saturated number prints and parses back to
// itself (the stream checker gets numbers as text; found by fuzz_schema_validate on Debian 13,
// whose Boost.JSON 1.83 hands such numbers on where 1.81 refused them).
TEST(SchemaNumber, SaturatedExponentsRoundTrip) {
  for (const char* t : {"1446743267890.540e73784467073709511617", "18446743267890.540e73709551699999999",
                        "1e999999999999999999", "-3.25e1000000000000000", "7e-99999999999999999999",
                        "123.456e999999999999998"}) {
    const Number n = Number::parse(t);
    EXPECT_EQ(Number::parse(n.to_string()).compare(n), 0) << t << " printed as " << n.to_string();
    EXPECT_EQ(Number::parse(n.to_string()).to_string(), n.to_string()) << t;
  }
  // A saturated number is above every unsaturated one of its sign.
  EXPECT_GT(Number::parse("1e99999999999999999").compare(Number::parse("1e999999")), 0);
}

TEST(SchemaNumber, ParsesAndPrintsCanonically) {
  EXPECT_EQ(Number::parse("0").to_string(), "0");
  EXPECT_EQ(Number::parse("-0").to_string(), "0");
  EXPECT_EQ(Number::parse("-0.000").to_string(), "0");
  EXPECT_EQ(Number::parse("1.0").to_string(), "1");
  EXPECT_EQ(Number::parse("1.50").to_string(), "1.5");
  EXPECT_EQ(Number::parse("-12.5e1").to_string(), "-125");
  EXPECT_EQ(Number::parse("0.001").to_string(), "0.001");
  EXPECT_EQ(Number::parse("123456789012345678901234567890.5").to_string(), "123456789012345678901234567890.5");
  EXPECT_EQ(Number::parse("1e400").to_string(), "1e+400");
  EXPECT_EQ(Number::parse("2.5e-30").to_string(), "2.5e-30");
}

TEST(SchemaNumber, RejectsWhatIsNotJsonGrammar) {
  for (const char* bad : {"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "NaN", "Infinity", "1 ", "0x10", "1.5.2"}) {
    auto t = ErrorOf([&] { Number::parse(bad); });
    EXPECT_EQ(t.sqlstate, "22P02") << bad;
  }
}

TEST(SchemaNumber, ComparesExactly) {
  auto cmp = [](const char* a, const char* b) { return Number::parse(a).compare(Number::parse(b)); };
  EXPECT_EQ(cmp("1", "1.0"), 0);
  EXPECT_EQ(cmp("0", "-0"), 0);
  EXPECT_EQ(cmp("100", "1e2"), 0);
  EXPECT_EQ(cmp("0.12", "0.123"), -1);
  EXPECT_EQ(cmp("0.13", "0.123"), 1);
  EXPECT_EQ(cmp("-1", "1"), -1);
  EXPECT_EQ(cmp("-2", "-1"), -1);
  EXPECT_EQ(cmp("-0.5", "0"), -1);
  EXPECT_EQ(cmp("18446744073709551617", "18446744073709551616"), 1);   // 2^64+1 > 2^64
  EXPECT_EQ(cmp("9223372036854775808", "9223372036854775807"), 1);     // 2^63 > 2^63-1
  EXPECT_EQ(cmp("123456789012345678901234567890.5", "123456789012345678901234567890"), 1);
  EXPECT_EQ(cmp("1e308", std::string("1" + std::string(308, '0')).c_str()), 0);
  EXPECT_EQ(cmp("1e-400", "0"), 1);
  EXPECT_EQ(cmp("99", "100"), -1);
}

TEST(SchemaNumber, FitsIntegersExactly) {
  EXPECT_EQ(Number::parse("9223372036854775807").to_int64(), INT64_MAX);
  EXPECT_EQ(Number::parse("-9223372036854775808").to_int64(), INT64_MIN);
  EXPECT_FALSE(Number::parse("9223372036854775808").to_int64());
  EXPECT_EQ(Number::parse("9223372036854775808").to_uint64(), 9223372036854775808ull);
  EXPECT_EQ(Number::parse("18446744073709551615").to_uint64(), UINT64_MAX);
  EXPECT_FALSE(Number::parse("18446744073709551616").to_uint64());
  EXPECT_FALSE(Number::parse("1.5").to_int64());
  EXPECT_EQ(Number::parse("2.0").to_int64(), 2);
  EXPECT_EQ(Number::parse("1e3").to_int64(), 1000);
  EXPECT_FALSE(Number::parse("1e400").to_uint64());
}

TEST(SchemaNumber, DoublesReadAsTheirShortestDecimal) {
  EXPECT_EQ(Number::from_double(0.1).compare(Number::parse("0.1")), 0);
  EXPECT_EQ(Number::from_double(1e30).to_string(), "1000000000000000000000000000000");
  EXPECT_TRUE(Number::from_double(1e30).is_integer());
  EXPECT_FALSE(Number::from_double(1.5).is_integer());
  EXPECT_TRUE(Number::from_double(-0.0).is_zero());
}

// --- Builder and documents -----------------------------------------------------------------

TEST(SchemaBuilder, StoresIntegersAsIntegersAndTheRestExactly) {
  Document d = parse_document(
      R"([1, 1.0, -0, 9223372036854775808, 18446744073709551616, 0.5, 123456789012345678901234567890.5, 1e2])");
  const boost::json::array& a = d.root().get_array();
  EXPECT_TRUE(a[0].is_int64());
  EXPECT_TRUE(a[1].is_int64()) << "1.0 is the integer 1";
  EXPECT_TRUE(a[2].is_int64());
  EXPECT_TRUE(a[3].is_uint64());
  EXPECT_TRUE(a[4].is_double());
  EXPECT_EQ(d.number(a[4]).to_string(), "18446744073709551616");
  EXPECT_EQ(d.number(a[5]).to_string(), "0.5");
  EXPECT_EQ(d.number(a[6]).to_string(), "123456789012345678901234567890.5");
  ASSERT_TRUE(a[7].is_int64());
  EXPECT_EQ(a[7].get_int64(), 100);
}

TEST(SchemaBuilder, IntegerFastPathAgreesWithTheExactPath) {
  // 18 digits take the fast path, 19 the exact one; both must give the same kind of value.
  Document d = parse_document(
      R"([999999999999999999, -999999999999999999, 9223372036854775807, -9223372036854775808, 0, -0, 7])");
  const boost::json::array& a = d.root().get_array();
  EXPECT_EQ(a[0].get_int64(), 999999999999999999LL);
  EXPECT_EQ(a[1].get_int64(), -999999999999999999LL);
  EXPECT_EQ(a[2].get_int64(), INT64_MAX);
  EXPECT_EQ(a[3].get_int64(), INT64_MIN);
  EXPECT_EQ(a[4].get_int64(), 0);
  EXPECT_EQ(a[5].get_int64(), 0);
  EXPECT_EQ(a[6].get_int64(), 7);
  // Leading zeros are not JSON: the fast path leaves them to the exact one, which refuses them.
  Builder b;
  EXPECT_THROW(b.number("00012"), Error);
  EXPECT_THROW(b.number("-012"), Error);
  EXPECT_THROW(b.number("-"), Error);
}

TEST(SchemaBuilder, ArenaIsReusedAndTakenDocumentsOutliveIt) {
  // One builder, documents one after another (as the glue validates a batch): a taken document
  // keeps its values after the builder has been reset and reused, large values spill over
  // several blocks, and a small one after a large one is built right.
  Builder b;
  b.begin_object();
  b.key("s");
  b.string(std::string(100000, 'x'));
  b.key("n");
  b.number("0.30000000000000000001");
  b.end_object();
  Document kept = b.take();
  for (int round = 0; round < 3; round++) {
    b.reset();
    b.begin_array();
    for (int i = 0; i < 20000; i++) b.number(i % 2 ? "1.5" : "12345678901234567890123");
    b.end_array();
    const Document& big = b.document();
    ASSERT_EQ(big.root().get_array().size(), 20000u);
    EXPECT_EQ(big.number(big.root().get_array()[19998]).to_string(), "12345678901234567890123");
    b.reset();
    b.begin_object();
    b.key("k");
    b.string("v");
    b.end_object();
    EXPECT_EQ(b.document().root().get_object().at("k").get_string(), "v");
  }
  const boost::json::object& o = kept.root().get_object();
  EXPECT_EQ(o.at("s").get_string().size(), 100000u);
  EXPECT_EQ(kept.number(o.at("n")).to_string(), "0.30000000000000000001");
}

TEST(SchemaBuilder, RepeatedKeyKeepsItsLastValueAndNoStaleNumber) {
  Document d = parse_document(R"({"a": {"x": 18446744073709551617.5}, "b": 1, "a": 18446744073709551618})");
  const boost::json::object& o = d.root().get_object();
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(d.number(o.at("a")).to_string(), "18446744073709551618");
  EXPECT_EQ(Check(R"({"properties": {"a": {"const": 18446744073709551618}}})",
                  R"({"a": {"x": 1.5}, "a": 18446744073709551618})"),
            "");
}

TEST(SchemaBuilder, CopyKeepsExactNumbers) {
  Document d = parse_document(R"({"v": [18446744073709551617, {"w": 0.30000000000000000001}]})");
  Document c = d.copy(d.root().get_object().at("v"));
  const boost::json::array& a = c.root().get_array();
  EXPECT_EQ(c.number(a[0]).to_string(), "18446744073709551617");
  EXPECT_EQ(c.number(a[1].get_object().at("w")).to_string(), "0.30000000000000000001");
}

TEST(SchemaBuilder, MisuseIsAnInternalError) {
  Builder b;
  EXPECT_EQ(ErrorOf([&] { b.end_object(); }).sqlstate, "XX000");
  b.reset();
  b.begin_object();
  EXPECT_EQ(ErrorOf([&] { b.number("1"); }).sqlstate, "XX000") << "a member needs a key";
  b.reset();
  b.begin_array();
  EXPECT_EQ(ErrorOf([&] { b.key("k"); }).sqlstate, "XX000");
  EXPECT_EQ(ErrorOf([&] { b.end_object(); }).sqlstate, "XX000");
  EXPECT_FALSE(b.complete());
  EXPECT_EQ(ErrorOf([&] { b.document(); }).sqlstate, "XX000");
  b.reset();
  b.null();
  EXPECT_EQ(ErrorOf([&] { b.null(); }).sqlstate, "XX000") << "a second root";
  b.reset();
  EXPECT_EQ(ErrorOf([&] { b.number("1.2.3"); }).sqlstate, "22P02");
}

TEST(SchemaBuilder, NestingIsBounded) {
  std::string deep_ok(kMaxJsonDepth, '[');
  deep_ok += std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(ErrorOf([&] { parse_document(deep_ok); }).sqlstate, "");
  std::string too_deep = "[" + deep_ok + "]";
  EXPECT_EQ(ErrorOf([&] { parse_document(too_deep); }).sqlstate, "54000");
  Builder b;
  for (std::size_t i = 0; i < kMaxJsonDepth; i++) b.begin_array();
  EXPECT_EQ(ErrorOf([&] { b.begin_object(); }).sqlstate, "54000");
}

TEST(SchemaBuilder, MalformedTextIs22P02) {
  for (const char* bad : {"", "{", "[1,]", "1 2", "{\"a\" 1}", "nul"})
    EXPECT_EQ(ErrorOf([&] { parse_document(bad); }).sqlstate, "22P02") << bad;
}

// --- type ----------------------------------------------------------------------------------

TEST(SchemaType, EachTypeBothWays) {
  const std::pair<const char*, const char*> cases[] = {
      {"null", "null"},   {"boolean", "true"}, {"object", "{}"},   {"array", "[]"},
      {"number", "1.5"},  {"integer", "7"},    {"string", "\"s\""}};
  for (const auto& [type, good] : cases) {
    const std::string schema = std::string(R"({"type": ")") + type + "\"}";
    EXPECT_EQ(Check(schema, good), "") << type;
    for (const auto& [other_type, other] : cases) {
      if (std::string(other_type) == type) continue;
      const bool also = (std::string(type) == "number" && std::string(other_type) == "integer");
      EXPECT_EQ(Check(schema, other).empty(), also) << type << " vs " << other;
    }
  }
  EXPECT_EQ(Check(R"({"type": "string"})", "[1]"), "(root): expected string, got array");
}

TEST(SchemaType, Arrays) {
  const char* s = R"({"type": ["string", "integer", "null"]})";
  EXPECT_EQ(Check(s, "null"), "");
  EXPECT_EQ(Check(s, "3"), "");
  EXPECT_EQ(Check(s, "\"x\""), "");
  EXPECT_EQ(Check(s, "true"), "(root): expected string, integer or null, got boolean");
  EXPECT_EQ(Check(s, "3.5"), "(root): expected string, integer or null, got number");
  EXPECT_EQ(Check(R"({"type": ["string", "null"]})", "1"), "(root): expected string or null, got number");
}

TEST(SchemaType, IntegerFollowsJsonSchema) {
  const char* s = R"({"type": "integer"})";
  EXPECT_EQ(Check(s, "1.0"), "") << "1.0 has no fractional part";
  EXPECT_EQ(Check(s, "-0"), "");
  EXPECT_EQ(Check(s, "1e2"), "");
  EXPECT_EQ(Check(s, "1.5"), "(root): expected integer, got number");
  EXPECT_EQ(Check(s, "9223372036854775808"), "") << "2^63";
  EXPECT_EQ(Check(s, "18446744073709551617"), "") << "2^64+1";
  EXPECT_EQ(Check(s, "123456789012345678901234567890"), "");
  EXPECT_EQ(Check(s, "1" + std::string(308, '0')), "") << "1e308 as decimal text";
  // As a double this one has no fractional part; exactly, it has one.
  EXPECT_EQ(Check(s, "123456789012345678901234567890.5"), "(root): expected integer, got number");
  EXPECT_EQ(Check(s, "1.0000000000000000000000000001"), "(root): expected integer, got number");
}

// --- properties, required, additionalProperties --------------------------------------------

TEST(SchemaObject, Properties) {
  const char* s = R"({"properties": {"amount": {"type": "integer"}, "note": {"type": "string"}}})";
  EXPECT_EQ(Check(s, R"({"amount": 5, "note": "x", "other": []})"), "");
  EXPECT_EQ(Check(s, R"({})"), "") << "properties are optional unless required";
  EXPECT_EQ(Check(s, R"([1])"), "") << "object keywords ignore other types";
  EXPECT_EQ(Check(s, R"({"amount": "5"})"), "/amount: expected integer, got string");
}

TEST(SchemaObject, Required) {
  const char* s = R"({"type": "object", "required": ["id", "name"]})";
  EXPECT_EQ(Check(s, R"({"id": 1, "name": null})"), "");
  EXPECT_EQ(Check(s, R"({"id": 1})"), "/name: required property is missing");
  std::optional<Violation> v = First(s, R"({"name": 1})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->pointer, "/id");
  EXPECT_EQ(v->keyword, "required");
  EXPECT_EQ(v->reason, "required property is missing");
  EXPECT_EQ(Check(R"({"properties": {"a": {"required": ["b"]}}})", R"({"a": {}})"), "/a/b: required property is missing");
  EXPECT_EQ(Check(R"({"required": []})", R"({})"), "");
}

TEST(SchemaObject, AdditionalPropertiesFalse) {
  const char* s = R"({"properties": {"a": {}}, "additionalProperties": false})";
  EXPECT_EQ(Check(s, R"({"a": 1})"), "");
  EXPECT_EQ(Check(s, R"({"a": 1, "b": 2, "c": 3})"), "/b: property is not allowed (additionalProperties is false)");
  std::optional<Violation> v = First(s, R"({"z": 1})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->keyword, "additionalProperties");
}

TEST(SchemaObject, AdditionalPropertiesSchemaAndTrue) {
  const char* s = R"({"properties": {"a": {}}, "additionalProperties": {"type": "number"}})";
  EXPECT_EQ(Check(s, R"({"a": "x", "b": 2})"), "");
  EXPECT_EQ(Check(s, R"({"a": "x", "b": "2"})"), "/b: expected number, got string");
  EXPECT_EQ(Check(R"({"additionalProperties": true})", R"({"b": "2"})"), "");
}

TEST(SchemaObject, PointerEscapesTildeAndSlash) {
  const char* s = R"({"properties": {"a/b": {"type": "string"}, "m~n": {"type": "string"}, "": {"type": "string"}}})";
  EXPECT_EQ(Check(s, R"({"a/b": 1})"), "/a~1b: expected string, got number");
  EXPECT_EQ(Check(s, R"({"m~n": 1})"), "/m~0n: expected string, got number");
  EXPECT_EQ(Check(s, R"({"": 1})"), "/: expected string, got number") << "the empty key is \"/\"";
  EXPECT_EQ(Check(R"({"required": ["~/"]})", "{}"), "/~0~1: required property is missing");
  EXPECT_EQ(Check(R"({"additionalProperties": false})", R"({"x/~y": 1})"),
            "/x~1~0y: property is not allowed (additionalProperties is false)");
}

// --- items, minItems, maxItems, nesting ----------------------------------------------------

TEST(SchemaArray, Items) {
  const char* s = R"({"items": {"type": "string"}})";
  EXPECT_EQ(Check(s, R"(["a", "b"])"), "");
  EXPECT_EQ(Check(s, R"([])"), "");
  EXPECT_EQ(Check(s, R"(["a", "b", 3, 4])"), "/2: expected string, got number");
  EXPECT_EQ(Check(R"({"properties": {"tags": {"items": {"type": "string"}}}})", R"({"tags": ["a", "b", 1]})"),
            "/tags/2: expected string, got number");
}

TEST(SchemaArray, MinAndMaxItems) {
  const char* s = R"({"minItems": 2, "maxItems": 3})";
  EXPECT_EQ(Check(s, "[1, 2]"), "");
  EXPECT_EQ(Check(s, "[1, 2, 3]"), "");
  EXPECT_EQ(Check(s, "[1]"), "(root): array has 1 item, fewer than minItems 2");
  EXPECT_EQ(Check(s, "[1, 2, 3, 4]"), "(root): array has 4 items, more than maxItems 3");
  EXPECT_EQ(Check(s, "\"not an array\""), "");
}

TEST(SchemaArray, NestedPropertiesInItemsInProperties) {
  const char* s = R"({
    "type": "object",
    "properties": {"orders": {"type": "array", "items": {
      "type": "object", "required": ["lines"],
      "properties": {"lines": {"items": {"properties": {"qty": {"type": "integer", "minimum": 1}}}}}}}}})";
  EXPECT_EQ(Check(s, R"({"orders": [{"lines": [{"qty": 1}]}, {"lines": [{"qty": 2}, {"qty": 3}]}]})"), "");
  EXPECT_EQ(Check(s, R"({"orders": [{"lines": [{"qty": 1}]}, {"lines": [{"qty": 2}, {"qty": 0}]}]})"),
            "/orders/1/lines/1/qty: 0 is less than minimum 1");
  EXPECT_EQ(Check(s, R"({"orders": [{"lines": []}, {}]})"), "/orders/1/lines: required property is missing");
}

// --- enum, const ---------------------------------------------------------------------------

TEST(SchemaEnumConst, Enum) {
  const char* s = R"({"enum": ["open", "closed", 1, null, {"a": [1, 2]}]})";
  EXPECT_EQ(Check(s, R"("open")"), "");
  EXPECT_EQ(Check(s, R"(1.0)"), "") << "1 and 1.0 are the same number";
  EXPECT_EQ(Check(s, R"(null)"), "");
  EXPECT_EQ(Check(s, R"({"a": [1.0, 2]})"), "");
  EXPECT_EQ(Check(s, R"("pending")"), R"((root): "pending" is not one of ["open","closed",1,null,{"a":[1,2]}])");
  EXPECT_NE(Check(s, R"({"a": [2, 1]})"), "") << "array order matters";
  EXPECT_NE(Check(s, R"({"a": [1, 2], "b": 1})"), "") << "an extra key";
  EXPECT_NE(Check(s, R"(true)"), "") << "true is not 1";
  EXPECT_NE(Check(R"({"enum": []})", "1"), "");
}

TEST(SchemaEnumConst, ConstIsDeepEquality) {
  const char* s = R"({"const": {"a": [1, {"b": 2.0}], "c": "x"}})";
  EXPECT_EQ(Check(s, R"({"c": "x", "a": [1.0, {"b": 2}]})"), "") << "key order does not matter";
  EXPECT_EQ(Check(s, R"({"c": "x", "a": [1, {"b": 2.5}]})"),
            R"((root): {"c":"x","a":[1,{"b":2.5}]} is not equal to const {"a":[1,{"b":2}],"c":"x"})");
  EXPECT_EQ(Check(R"({"const": 0})", "-0"), "");
  EXPECT_EQ(Check(R"({"const": 0})", "-0.0"), "");
  EXPECT_EQ(Check(R"({"const": 18446744073709551617})", "18446744073709551617"), "");
  EXPECT_EQ(Check(R"({"const": 18446744073709551617})", "18446744073709551616"),
            "(root): 18446744073709551616 is not equal to const 18446744073709551617");
  EXPECT_EQ(Check(R"({"const": 9223372036854775808})", "9223372036854775808.0"), "") << "uint64 vs decimal";
  EXPECT_NE(Check(R"({"const": -1})", "18446744073709551615"), "");
  EXPECT_NE(Check(R"({"const": "1"})", "1"), "");
  EXPECT_NE(Check(R"({"const": null})", "false"), "");
}

// --- numbers -------------------------------------------------------------------------------

TEST(SchemaNumbers, MinimumAndMaximum) {
  const char* s = R"({"properties": {"amount": {"minimum": 1, "maximum": 10}}})";
  EXPECT_EQ(Check(s, R"({"amount": 1})"), "");
  EXPECT_EQ(Check(s, R"({"amount": 10})"), "");
  EXPECT_EQ(Check(s, R"({"amount": 10.0})"), "");
  EXPECT_EQ(Check(s, R"({"amount": 0})"), "/amount: 0 is less than minimum 1");
  EXPECT_EQ(Check(s, R"({"amount": 0.999})"), "/amount: 0.999 is less than minimum 1");
  EXPECT_EQ(Check(s, R"({"amount": 11})"), "/amount: 11 is greater than maximum 10");
  EXPECT_EQ(Check(s, R"({"amount": 10.0000000000000000001})"),
            "/amount: 10.0000000000000000001 is greater than maximum 10");
  EXPECT_EQ(Check(s, R"({"amount": "0"})"), "") << "number keywords ignore strings";
}

TEST(SchemaNumbers, ExclusiveBounds) {
  const char* s = R"({"exclusiveMinimum": 0, "exclusiveMaximum": 1.5})";
  EXPECT_EQ(Check(s, "0.0001"), "");
  EXPECT_EQ(Check(s, "1.4999"), "");
  EXPECT_EQ(Check(s, "0"), "(root): 0 is not greater than exclusiveMinimum 0");
  EXPECT_EQ(Check(s, "-0.0"), "(root): 0 is not greater than exclusiveMinimum 0");
  EXPECT_EQ(Check(s, "1.5"), "(root): 1.5 is not less than exclusiveMaximum 1.5");
  EXPECT_EQ(Check(s, "1.50"), "(root): 1.5 is not less than exclusiveMaximum 1.5");
}

TEST(SchemaNumbers, BigIntegersCompareExactly) {
  const char* s = R"({"minimum": 18446744073709551617})";  // 2^64 + 1
  EXPECT_EQ(Check(s, "18446744073709551617"), "");
  EXPECT_EQ(Check(s, "18446744073709551616"),
            "(root): 18446744073709551616 is less than minimum 18446744073709551617");
  // Read as doubles, both are 2^64: the plain Boost.JSON path cannot tell them apart.
  EXPECT_FALSE(Validator::compile(boost::json::parse(s)).validate(boost::json::parse("18446744073709551616")));
  EXPECT_EQ(Check(R"({"maximum": 9223372036854775807})", "9223372036854775808"),
            "(root): 9223372036854775808 is greater than maximum 9223372036854775807");
  EXPECT_EQ(Check(R"({"maximum": 9223372036854775807})", "-9223372036854775808"), "");
  EXPECT_EQ(Check(R"({"minimum": -1})", "18446744073709551615"), "");
  EXPECT_EQ(Check(R"({"maximum": 9223372036854775808})", "9223372036854775807"), "");
  const std::string e308 = "1" + std::string(308, '0');
  EXPECT_EQ(Check(R"({"maximum": 1e308})", e308), "");
  EXPECT_NE(Check(R"({"maximum": 1e308})", e308 + "1"), "");
  EXPECT_NE(Check(R"({"maximum": 1e308})", e308 + ".0000001"), "");
  EXPECT_EQ(Check(R"({"minimum": 0.1})", "0.1"), "") << "0.1 is 0.1 on both sides";
  EXPECT_NE(Check(R"({"minimum": 0.1})", "0.09999999999999999999"), "");
}

// --- strings -------------------------------------------------------------------------------

TEST(SchemaStrings, LengthsCountCodePoints) {
  const char* s = R"({"minLength": 2, "maxLength": 3})";
  EXPECT_EQ(Check(s, R"("ab")"), "");
  EXPECT_EQ(Check(s, R"("abc")"), "");
  EXPECT_EQ(Check(s, R"("a")"), R"((root): "a" has 1 character, fewer than minLength 2)");
  EXPECT_EQ(Check(s, R"("abcd")"), R"((root): "abcd" has 4 characters, more than maxLength 3)");
  // "é" is 2 bytes, one code point; an emoji is 4 bytes, one code point.
  EXPECT_EQ(Check(s, "\"\xC3\xA9\""), "(root): \"\xC3\xA9\" has 1 character, fewer than minLength 2");
  EXPECT_EQ(Check(s, "\"\xF0\x9F\x98\x80\""), "(root): \"\xF0\x9F\x98\x80\" has 1 character, fewer than minLength 2");
  EXPECT_EQ(Check(s, "\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xC3\xA9\""), "") << "3 code points, 10 bytes";
  EXPECT_EQ(Check(R"({"maxLength": 1})", "\"\\ud83d\\ude00\""), "") << "an escaped surrogate pair is one";
  EXPECT_EQ(Check(R"({"maxLength": 0})", R"("")"), "");
  EXPECT_EQ(Check(s, "5"), "") << "string keywords ignore numbers";
}

TEST(SchemaStrings, PatternIsASearch) {
  EXPECT_EQ(Check(R"({"pattern": "b"})", R"("abc")"), "") << "unanchored, as JSON Schema says";
  EXPECT_EQ(Check(R"({"pattern": "^b"})", R"("abc")"), R"((root): "abc" does not match pattern "^b")");
  const char* s = R"({"properties": {"code": {"pattern": "^[a-z]+$"}}})";
  EXPECT_EQ(Check(s, R"({"code": "abc"})"), "");
  EXPECT_EQ(Check(s, R"({"code": "ab-1"})"), R"(/code: "ab-1" does not match pattern "^[a-z]+$")");
  EXPECT_EQ(Check(R"({"pattern": "^\\p{L}+$"})", "\"\xC3\xA9t\xC3\xA9\""), "") << "UTF-8 aware";
  EXPECT_EQ(Check(R"({"pattern": "^.$"})", "\"\xF0\x9F\x98\x80\""), "") << ". is one code point";
  EXPECT_EQ(Check(R"({"pattern": "x"})", "5"), "");
}

TEST(SchemaStrings, PatternTimeIsLinear) {
  // (a+)+$ is exponential for a backtracking engine on "aaa...ab"; RE2 is linear.
  Validator v = Compile(R"({"pattern": "^(a+)+$"})");
  std::string doc = "\"" + std::string(200000, 'a') + "b\"";
  Document d = parse_document(doc);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(v.validate(d));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(ms, 2000);
}

TEST(SchemaStrings, FormatUuid) {
  const char* s = R"({"format": "uuid"})";
  EXPECT_EQ(Check(s, R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")"), "");
  EXPECT_EQ(Check(s, R"("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")"), "");
  EXPECT_EQ(Check(s, R"("00000000-0000-0000-0000-000000000000")"), "");
  for (const char* bad : {R"("a0eebc999c0b4ef8bb6d6bb9bd380a11")", R"("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}")",
                          R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1")", R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111")",
                          R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g")",
                          R"("a0eebc99-9c0b4-ef8-bb6d-6bb9bd380a11")", R"("")"})
    EXPECT_EQ(Check(s, bad), std::string("(root): ") + bad + " is not a valid uuid");
  EXPECT_EQ(Check(s, "12"), "") << "formats apply to strings";
}

TEST(SchemaStrings, FormatDateTime) {
  const char* s = R"({"format": "date-time"})";
  for (const char* good :
       {"1985-04-12T23:20:50.52Z", "1996-12-19T16:39:57-08:00", "1990-12-31T23:59:60Z", "1990-12-31T15:59:60-08:00",
        "2000-02-29T00:00:00Z", "2024-01-01t00:00:00z", "1937-01-01T12:00:27.87+00:20", "2024-06-30T12:00:00.123456789+14:00"})
    EXPECT_EQ(Check(s, std::string("\"") + good + "\""), "") << good;
  for (const char* bad :
       {"1990-12-31T23:59:61Z", "1990-12-31T23:58:60Z", "1990-12-31T22:59:60Z", "1900-02-29T00:00:00Z",
        "2021-02-29T00:00:00Z", "2021-04-31T00:00:00Z", "2021-13-01T00:00:00Z", "2021-00-01T00:00:00Z",
        "2021-01-00T00:00:00Z", "2021-01-01T24:00:00Z", "2021-01-01T00:60:00Z", "2021-01-01T00:00:00",
        "2021-01-01 00:00:00Z", "2021-01-01T00:00:00.Z", "2021-01-01T00:00:00+24:00", "2021-01-01T00:00:00+01:60",
        "2021-01-01T00:00:00+0100", "2021-01-01", "21-01-01T00:00:00Z", "2021-01-01T00:00:00ZZ",
        "2021-01-01T00:00:00Z ", "\xD9\xA2" "021-01-01T00:00:00Z"})
    EXPECT_EQ(Check(s, std::string("\"") + bad + "\""),
              std::string("(root): \"") + bad + "\" is not a valid RFC 3339 date-time")
        << bad;
}

// --- boolean schemas, annotations ----------------------------------------------------------

TEST(SchemaBoolean, TrueAndFalseSchemas) {
  EXPECT_EQ(Check("true", R"({"anything": [1]})"), "");
  EXPECT_EQ(Check("false", "null"), "(root): no value is allowed here (the schema is false)");
  EXPECT_EQ(Check("{}", "[]"), "");
  const char* s = R"({"properties": {"legacy": false}, "items": true})";
  EXPECT_EQ(Check(s, R"({"other": 1})"), "");
  std::optional<Violation> v = First(s, R"({"legacy": 1})");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->message, "/legacy: no value is allowed here (the schema is false)");
  EXPECT_EQ(v->keyword, "false");
}

TEST(SchemaAnnotations, AcceptedAndIgnored) {
  const char* s = R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": 1,
    "description": "d", "$comment": "c", "default": {"x": [1]}, "examples": [1, "two"],
    "properties": {"a": {"title": "A", "default": "oops: not a string"}}})";
  EXPECT_EQ(Check(s, R"({"a": 1})"), "");
}

// --- the order of violations ---------------------------------------------------------------

TEST(SchemaOrder, FirstViolationIsDeterministic) {
  // type before enum and const before the kind's keywords
  EXPECT_EQ(First(R"({"enum": [1], "type": "string", "minLength": 5})", "2")->keyword, "type");
  EXPECT_EQ(First(R"({"minLength": 5, "enum": ["b"]})", R"("a")")->keyword, "enum");
  EXPECT_EQ(First(R"({"minLength": 5, "const": "b"})", R"("a")")->keyword, "const");
  // numbers: minimum, exclusiveMinimum, maximum, exclusiveMaximum
  EXPECT_EQ(First(R"({"maximum": -5, "minimum": 5})", "0")->keyword, "minimum");
  EXPECT_EQ(First(R"({"exclusiveMaximum": -5, "exclusiveMinimum": 5})", "0")->keyword, "exclusiveMinimum");
  // strings: minLength, maxLength, pattern, format
  EXPECT_EQ(First(R"({"format": "uuid", "pattern": "^x", "minLength": 9})", R"("a")")->keyword, "minLength");
  EXPECT_EQ(First(R"({"format": "uuid", "pattern": "^x"})", R"("a")")->keyword, "pattern");
  // arrays: minItems, maxItems, then items in index order
  EXPECT_EQ(First(R"({"items": {"type": "string"}, "minItems": 3})", "[1, 2]")->keyword, "minItems");
  EXPECT_EQ(First(R"({"items": {"type": "string"}})", R"(["a", 1, 2])")->pointer, "/1");
  // objects: required (in its order), properties (in schema order), additionalProperties (data order)
  const char* s = R"({"additionalProperties": false, "properties": {"b": {"type": "string"}, "a": {"type": "string"}},
                      "required": ["z", "y"]})";
  EXPECT_EQ(First(s, R"({"a": 1, "b": 1, "x": 1})")->message, "/z: required property is missing");
  EXPECT_EQ(First(s, R"({"y": 1, "a": 1, "b": 1, "x": 1, "z": 1})")->message, "/b: expected string, got number");
  EXPECT_EQ(First(s, R"({"y": 1, "a": "", "b": "", "x": 1, "z": 1})")->pointer, "/y");
  EXPECT_EQ(First(s, R"({"x": 1, "y": 1, "a": "", "b": "", "z": 1})")->pointer, "/x");
}

// --- messages ------------------------------------------------------------------------------

TEST(SchemaMessages, LongValuesAreCut) {
  const std::string long_string(5000, 'x');
  std::optional<Violation> v = First(R"({"maxLength": 3})", "\"" + long_string + "\"");
  ASSERT_TRUE(v);
  EXPECT_LT(v->message.size(), 200u);
  EXPECT_TRUE(Contains(v->message, "xxx...\" has 5000 characters, more than maxLength 3"));
  // A cut never splits a UTF-8 character.
  std::string accents;
  for (int i = 0; i < 100; i++) accents += "\xC3\xA9";
  v = First(R"({"maxLength": 3})", "\"a" + accents + "\"");
  ASSERT_TRUE(v);
  EXPECT_TRUE(Contains(v->message, "\xC3\xA9...\""));
  // Long pointers, containers and numbers are cut too.
  const std::string key(1000, 'k');
  v = First(R"({"additionalProperties": false})", "{\"" + key + "\": 1}");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->pointer, "/" + key);
  EXPECT_LT(v->message.size(), 300u);
  EXPECT_EQ(v->message, "/" + std::string(132, 'k') + "..." + std::string(66, 'k') +
                            ": property is not allowed (additionalProperties is false)")
      << "cut in the middle: head and tail stay";
  v = First(R"({"const": 1})", "[" + std::string(2000, '1') + "]");
  ASSERT_TRUE(v);
  EXPECT_LT(v->message.size(), 200u);
  EXPECT_TRUE(Contains(v->message, "(root): [1.1111111111111111111111111111111111111111...111111111111111e+1999] is not"));
  std::string many = "[1";
  for (int i = 2; i <= 40; i++) many += ", " + std::to_string(i);
  v = First(R"({"const": 1})", many + "]");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->message,
            "(root): [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,...] is not equal to const 1");
  v = First(R"({"enum": [[{"a": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "b": 2}]]})", "1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->reason,
            R"(1 is not one of [[{"a":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...",...}]])");
  v = First(R"({"type": "array"})", "{\"a\": \"" + long_string + "\"}");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->message, "(root): expected array, got object");
}

TEST(SchemaMessages, LongSchemaPointersAreCutInTheMiddle) {
  std::string s;
  for (int i = 0; i < 60; i++) s += R"({"properties": {"p": )";
  s += R"({"$ref": "#"})";
  for (int i = 0; i < 60; i++) s += "}}";
  auto t = CompileError(s);
  EXPECT_EQ(t.sqlstate, k22023);
  EXPECT_TRUE(Contains(t.message, "unsupported keyword \"$ref\" at /properties/p/properties/p/"));
  EXPECT_TRUE(Contains(t.message, "...")) << t.message;
  EXPECT_TRUE(Contains(t.message, "/properties/p/properties/p")) << t.message;
  EXPECT_EQ(t.message.substr(t.message.size() - 13), "/properties/p") << "the leaf stays visible";
  EXPECT_LT(t.message.size(), 300u);
}

TEST(SchemaMessages, LowerCaseWithoutTrailingPeriod) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type": "string"})", "1"},          {R"({"enum": [1]})", "2"},
      {R"({"const": 1})", "2"},                {R"({"minimum": 1})", "0"},
      {R"({"maximum": 1})", "2"},              {R"({"exclusiveMinimum": 1})", "1"},
      {R"({"exclusiveMaximum": 1})", "1"},     {R"({"minLength": 1})", R"("")"},
      {R"({"maxLength": 0})", R"("a")"},       {R"({"minItems": 1})", "[]"},
      {R"({"maxItems": 0})", "[1]"},           {R"({"pattern": "a"})", R"("b")"},
      {R"({"format": "uuid"})", R"("b")"},     {R"({"format": "date-time"})", R"("b")"},
      {R"({"required": ["a"]})", "{}"},        {R"({"additionalProperties": false})", R"({"a": 1})"},
      {"false", "1"}};
  for (const auto& [schema, doc] : cases) {
    std::optional<Violation> v = First(schema, doc);
    ASSERT_TRUE(v) << schema;
    EXPECT_FALSE(v->reason.empty());
    EXPECT_NE(v->reason.back(), '.') << v->reason;
    EXPECT_FALSE(v->reason[0] >= 'A' && v->reason[0] <= 'Z') << v->reason;
    EXPECT_EQ(v->message, (v->pointer.empty() ? "(root)" : v->pointer) + ": " + v->reason);
  }
}

// --- compile errors ------------------------------------------------------------------------

TEST(SchemaCompile, NotAnObjectOrBoolean) {
  for (const char* s : {"[]", "\"string\"", "1", "null"}) {
    auto t = CompileError(s);
    EXPECT_EQ(t.sqlstate, k22023) << s;
    EXPECT_TRUE(Contains(t.message, "a schema must be an object or a boolean")) << s;
    EXPECT_TRUE(Contains(t.message, "at the root")) << s;
  }
  auto t = CompileError(R"({"properties": {"a": 1}})");
  EXPECT_EQ(t.message, R"(property "a" of "properties" must be a schema (an object or a boolean) at the root)");
  t = CompileError(R"({"items": {"items": "x"}})");
  EXPECT_EQ(t.message, R"("items" must be a schema (an object or a boolean) at /items)");
  t = CompileError(R"({"additionalProperties": null})");
  EXPECT_EQ(t.message, R"("additionalProperties" must be a schema (an object or a boolean) at the root)");
}

TEST(SchemaCompile, UnsupportedKeywordsAreNamed) {
  auto t = CompileError(R"({"properties": {"a": {"$ref": "#/definitions/x"}}})");
  EXPECT_EQ(t.sqlstate, k22023);
  EXPECT_EQ(t.message, R"(unsupported keyword "$ref" at /properties/a)");
  EXPECT_TRUE(Contains(t.hint, "Supported keywords: type, properties"));
  for (const char* kw : {"allOf", "anyOf", "oneOf", "not", "if", "patternProperties", "prefixItems",
                         "uniqueItems", "multipleOf", "$id", "$defs", "dependentRequired", "contains",
                         "propertyNames", "minProperties", "Type"}) {
    t = CompileError(std::string("{\"") + kw + "\": {}}");
    EXPECT_EQ(t.sqlstate, k22023) << kw;
    EXPECT_EQ(t.message, std::string("unsupported keyword \"") + kw + "\" at the root");
  }
  t = CompileError(R"({"properties": {"a/b": {"items": {"x~": 1}}}})");
  EXPECT_EQ(t.message, R"(unsupported keyword "x~" at /properties/a~1b/items)");
}

TEST(SchemaCompile, MalformedKeywordValues) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"properties": {"amount": {"minimum": "1"}}})", R"("minimum" must be a number at /properties/amount)"},
      {R"({"maximum": null})", R"("maximum" must be a number at the root)"},
      {R"({"exclusiveMinimum": true})", R"("exclusiveMinimum" must be a number at the root)"},
      {R"({"exclusiveMaximum": [1]})", R"("exclusiveMaximum" must be a number at the root)"},
      {R"({"required": "a"})", R"("required" must be an array of strings at the root)"},
      {R"({"required": ["a", 1]})", R"("required" must be an array of strings at the root)"},
      {R"({"required": ["a", "a"]})", R"("required" lists "a" twice at the root)"},
      {R"({"type": "str"})", R"(unknown type "str" in "type" at the root)"},
      {R"({"type": []})", R"("type" must not be an empty array at the root)"},
      {R"({"type": ["string", 1]})", R"("type" must be a type name or an array of type names at the root)"},
      {R"({"type": ["null", "null"]})", R"("type" lists "null" twice at the root)"},
      {R"({"properties": []})", R"("properties" must be an object at the root)"},
      {R"({"enum": {"a": 1}})", R"("enum" must be an array at the root)"},
      {R"({"minLength": -1})", R"("minLength" must be a non-negative integer at the root)"},
      {R"({"maxLength": 1.5})", R"("maxLength" must be a non-negative integer at the root)"},
      {R"({"minItems": "1"})", R"("minItems" must be a non-negative integer at the root)"},
      {R"({"maxItems": null})", R"("maxItems" must be a non-negative integer at the root)"},
      {R"({"pattern": 1})", R"("pattern" must be a string at the root)"},
      {R"({"format": 1})", R"("format" must be a string at the root)"},
      {R"({"format": "email"})", R"(unsupported format "email" at the root)"},
      {R"({"items": [{"type": "string"}]})",
       R"("items" as an array (one schema per position) is not supported; give one schema for every item at the root)"},
  };
  for (const auto& [schema, message] : cases) {
    auto t = CompileError(schema);
    EXPECT_EQ(t.sqlstate, k22023) << schema;
    EXPECT_EQ(t.message, message) << schema;
  }
  // Integral counts written as decimals are integers; huge ones saturate.
  EXPECT_EQ(Check(R"({"maxLength": 2.0})", R"("abc")"), R"((root): "abc" has 3 characters, more than maxLength 2)");
  EXPECT_EQ(Check(R"({"maxItems": 1e30})", "[1, 2]"), "");
}

TEST(SchemaCompile, PatternsRe2Rejects) {
  const char* cases[] = {R"((?=a))", R"((?!a))", R"((?<=a)b)", R"((a)\\1)", R"([a-)", R"(a{2,1})", R"(\\u0041)",
                         R"(a{1001})"};
  for (const char* pattern : cases) {
    auto t = CompileError(std::string(R"({"properties": {"code": {"pattern": ")") + pattern + "\"}}}");
    EXPECT_EQ(t.sqlstate, k22023) << pattern;
    EXPECT_TRUE(Contains(t.message, "\"pattern\" ")) << t.message;
    EXPECT_TRUE(Contains(t.message, "is not a regular expression RE2 accepts")) << t.message;
    EXPECT_TRUE(Contains(t.message, "at /properties/code")) << t.message;
    EXPECT_TRUE(Contains(t.hint, "RE2 syntax")) << t.hint;
  }
  // Beyond RE2's memory budget (8 MiB) a pattern does not compile; just below it, it does.
  auto big = CompileError(R"({"pattern": "^[\\p{L}\\p{N}]{1,500}$"})");
  EXPECT_EQ(big.sqlstate, k22023);
  EXPECT_TRUE(Contains(big.message, "pattern too large")) << big.message;
  EXPECT_EQ(CompileError(R"({"pattern": "^[\\p{L}\\p{N}]{1,200}$"})").sqlstate, "");
  // RE2's own spellings of what ECMA writes otherwise are accepted.
  for (const char* ok : {R"((?P<n>a))", R"([\\s\\S])", R"((?s).)", R"(\\x{41})", R"(\\pL)", R"([[:alpha:]])"})
    EXPECT_EQ(CompileError(std::string(R"({"pattern": ")") + ok + "\"}").sqlstate, "") << ok;
  EXPECT_EQ(Check(R"({"pattern": "^\\x{e9}$"})", "\"\xC3\xA9\""), "");

  auto t = CompileError(R"j({"pattern": "(?=x)"})j");
  EXPECT_EQ(t.message,
            R"j("pattern" "(?=x)" is not a regular expression RE2 accepts (invalid perl operator: (?=) at the root)j");
}

TEST(SchemaCompile, DepthIsBounded) {
  auto nested = [](int levels) {
    std::string s;
    for (int i = 1; i < levels; i++) s += R"({"items": )";
    s += "{}";
    for (int i = 1; i < levels; i++) s += "}";
    return s;
  };
  EXPECT_EQ(CompileError(nested(kMaxSchemaDepth)).sqlstate, "");
  auto t = CompileError(nested(kMaxSchemaDepth + 1));
  EXPECT_EQ(t.sqlstate, k22023);
  EXPECT_TRUE(Contains(t.message, "the schema nests deeper than 64 levels at /items/items/"));
  // Deep values under const, enum or annotations are data, not schema levels.
  EXPECT_EQ(CompileError(R"({"const": )" + std::string(500, '[') + std::string(500, ']') + "}").sqlstate, "");
}

TEST(SchemaCompile, FromPlainBoostJson) {
  Validator v = Validator::compile(boost::json::parse(R"({"type": "object", "required": ["a"]})"));
  EXPECT_FALSE(v.validate(boost::json::parse(R"({"a": 1})")));
  EXPECT_EQ(v.validate(boost::json::parse(R"({})"))->message, "/a: required property is missing");
  EXPECT_EQ(ErrorOf([] { Validator::compile(boost::json::parse(R"({"$ref": "#"})")); }).sqlstate, k22023);
}

// --- immutability and cost -----------------------------------------------------------------

const char* const kTenProperties = R"({
  "type": "object",
  "required": ["id", "account", "amount", "currency"],
  "additionalProperties": false,
  "properties": {
    "id": {"type": "string", "format": "uuid"},
    "account": {"type": "string", "minLength": 1, "maxLength": 64},
    "amount": {"type": "integer", "minimum": 1, "maximum": 1000000000},
    "currency": {"enum": ["EUR", "USD", "GBP"]},
    "at": {"type": "string", "format": "date-time"},
    "note": {"type": ["string", "null"], "maxLength": 200},
    "reference": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
    "tags": {"type": "array", "maxItems": 10, "items": {"type": "string"}},
    "rate": {"type": "number", "exclusiveMinimum": 0},
    "confirmed": {"type": "boolean"}}})";

const char* const kTenValues = R"({
  "id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "account": "acc-42", "amount": 1250, "currency": "EUR",
  "at": "2024-05-01T12:30:00.250Z", "note": null, "reference": "INV-20240501", "tags": ["a", "b"],
  "rate": 1.0825, "confirmed": true})";

// --- StreamChecker (the appends' fast path; every Check above also runs it) -------------------

TEST(SchemaStream, ShortcutsOnlyWhereNoRuleReadsTheValue) {
  const Validator v = Compile(R"({"properties": {
      "n": {"type": "number"}, "i": {"type": "integer"}, "b": {"minimum": 1},
      "e": {"enum": [1, 2]}, "o": {"type": "object"}, "p": {"properties": {"x": true}},
      "a": {"type": "array"}, "m": {"maxItems": 2}, "t": true},
    "additionalProperties": {"type": ["number", "object"]}})");
  StreamChecker c;
  struct Expect {
    const char* key;
    bool number_text, contents;
  };
  const Expect expect[] = {{"n", false, false}, {"i", true, false}, {"b", true, false}, {"e", true, true},
                           {"o", false, false}, {"p", false, true},  {"a", false, false}, {"m", false, true},
                           {"t", false, false}, {"zz", false, false}};
  for (const Expect& e : expect) {
    c.start(v);
    c.begin_object();
    c.key(e.key);
    EXPECT_EQ(c.wants_number_text(), e.number_text) << e.key;
    EXPECT_EQ(c.wants_contents(), e.contents) << e.key;
  }
  // Nothing is wanted once the check failed (the walk may stop).
  c.start(v);
  c.begin_object();
  c.key("n");
  c.null();
  EXPECT_FALSE(c.ok());
  c.key("e");
  EXPECT_FALSE(c.wants_number_text());
  EXPECT_FALSE(c.wants_contents());

  // Taking the shortcuts: an unread number and opaque containers are checked by their kind.
  c.start(v);
  c.begin_object();
  c.key("n");
  c.number_unread();
  c.key("o");
  c.opaque(true);
  c.key("a");
  c.opaque(false);
  c.key("t");
  c.opaque(true);
  c.key("zz");
  c.opaque(true);
  c.end_object();
  EXPECT_TRUE(c.passed());

  c.start(v);
  c.begin_object();
  c.key("o");
  c.opaque(false);  // an array where an object must be
  EXPECT_FALSE(c.ok());

  c.start(v);
  c.begin_object();
  c.key("zz");
  c.string("s");  // additionalProperties: number or object
  EXPECT_FALSE(c.ok());
}

TEST(SchemaStream, KeysInJsonbOrderOrAnyOther) {
  // jsonb gives keys shorter first, then bytewise; the checker finds members either way.
  const Validator v = Compile(R"({"required": ["bb", "a", "ccc"], "properties": {"ccc": {"type": "string"},
                                  "a": {"type": "integer"}, "zz": {"type": "null"}, "bb": {"type": "boolean"}},
                                  "additionalProperties": false})");
  StreamChecker c;
  auto run = [&](std::initializer_list<const char*> keys) {
    c.start(v);
    c.begin_object();
    for (const char* k : keys) {
      c.key(k);
      const std::string_view key(k);
      if (key == "a") c.number("1");
      else if (key == "ccc") c.string("s");
      else if (key == "zz") c.null();
      else c.boolean(true);
    }
    c.end_object();
    return c.passed();
  };
  EXPECT_TRUE(run({"a", "bb", "zz", "ccc"}));
  EXPECT_TRUE(run({"ccc", "zz", "bb", "a"}));
  EXPECT_TRUE(run({"bb", "a", "ccc"}));
  EXPECT_FALSE(run({"a", "zz", "ccc"})) << "bb is required";
  EXPECT_FALSE(run({"a", "bb", "b", "ccc"})) << "b is not allowed";
  EXPECT_FALSE(run({"a", "bb", "ccc", "d"})) << "d is not allowed";
}

TEST(SchemaStream, ShortcutsTakenAgainstTheAdviceGiveUp) {
  const Validator v = Compile(R"({"properties": {"i": {"type": "integer"}, "p": {"required": ["x"]}}})");
  StreamChecker c;
  c.start(v);
  c.begin_object();
  c.key("i");
  c.number_unread();  // its text was wanted: no answer without it
  EXPECT_FALSE(c.ok());
  c.start(v);
  c.begin_object();
  c.key("p");
  c.opaque(true);  // its members were wanted
  EXPECT_FALSE(c.ok());
  EXPECT_FALSE(c.passed());
}

TEST(SchemaStream, OnlyACompleteValuePasses) {
  const Validator v = Compile("true");
  StreamChecker c;
  EXPECT_FALSE(c.passed()) << "before start";
  c.start(v);
  EXPECT_FALSE(c.passed()) << "nothing given";
  c.begin_object();
  c.key("a");
  c.begin_array();
  EXPECT_FALSE(c.passed()) << "open containers";
  c.end_array();
  c.end_object();
  EXPECT_TRUE(c.passed());
  c.null();
  EXPECT_FALSE(c.passed()) << "a second root";

  // Tokens out of order give up rather than guess.
  c.start(v);
  c.end_object();
  EXPECT_FALSE(c.ok());
  c.start(v);
  c.begin_object();
  c.string("member without a key");
  EXPECT_FALSE(c.ok());
  c.start(v);
  c.begin_array();
  c.end_object();
  EXPECT_FALSE(c.ok());
  c.start(v);
  c.begin_object();
  c.key("a");
  c.key("b");
  EXPECT_FALSE(c.ok());
  c.start(v);
  c.number("01");
  EXPECT_TRUE(c.passed()) << "true reads no number";
  const Validator n = Compile(R"({"type": "integer"})");
  c.start(n);
  EXPECT_THROW(c.number("01"), Error) << "not JSON's grammar: the C API turns this into giving up";
}

TEST(SchemaStream, DeepNestingIsLeftToTheBuilder) {
  const Validator v = Compile(R"({"items": {"type": "array"}})");
  StreamChecker c;
  c.start(v);
  for (std::size_t i = 0; i < kMaxJsonDepth + 1; i++) c.begin_array();
  EXPECT_FALSE(c.ok());
  // Nesting is free where no rule looks: the shortcut steps over it.
  const Validator any = Compile(R"({"type": "array"})");
  c.start(any);
  c.begin_array();
  EXPECT_FALSE(c.wants_contents());
  c.opaque(false);
  c.end_array();
  EXPECT_TRUE(c.passed());
}

TEST(SchemaStream, EnumAndConstValuesAreBuiltWhole) {
  const Validator v = Compile(R"({"properties": {"k": {"const": {"a": [1, {"b": null}]}},
                                                 "s": {"enum": ["open", "closed"], "maxLength": 4}}})");
  StreamChecker c;
  for (const char* doc : {R"({"k": {"a": [1.0, {"b": null}]}, "s": "open"})", R"({"k": {"a": [1, {"b": 0}]}})",
                          R"({"s": "closed"})", R"({"s": "shut"})", R"({"k": {"a": [1, {"b": null}], "c": 1}})"}) {
    const Document d = parse_document(doc);
    EXPECT_EQ(stream_check(c, v, d, true), !v.validate(d)) << doc;
  }
  EXPECT_TRUE(stream_check(c, v, parse_document(R"({"k": {"a": [1.0, {"b": null}]}, "s": "open"})"), true));
  EXPECT_FALSE(stream_check(c, v, parse_document(R"({"s": "closed"})"), true)) << "maxLength 4, inside the capture";
}

TEST(SchemaValidator, SameValidatorFromManyThreads) {
  const Validator v = Compile(kTenProperties);
  const Document good = parse_document(kTenValues);
  const Document bad = parse_document(R"({"id": "x", "account": "a", "amount": 1, "currency": "EUR"})");
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; t++)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; i++) {
        if (v.validate(good)) wrong[t]++;
        std::optional<Violation> r = v.validate(bad);
        if (!r || r->message != R"(/id: "x" is not a valid uuid)") wrong[t]++;
      }
    });
  for (std::thread& t : threads) t.join();
  for (int w : wrong) EXPECT_EQ(w, 0);
}

TEST(SchemaValidator, TenPropertyObjectCost) {
  const Validator v = Compile(kTenProperties);
  const Document d = parse_document(kTenValues);
  ASSERT_FALSE(v.validate(d)) << v.validate(d)->message;
  constexpr int kRounds = 20000;
  auto start = std::chrono::steady_clock::now();
  int failures = 0;
  for (int i = 0; i < kRounds; i++) failures += v.validate(d).has_value();
  const double validate_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / kRounds;

  // What the glue pays per event: build the document through the C API, then validate.
  ev_error err;
  ev_json_builder* b = ev_json_builder_new(&err);
  ASSERT_NE(b, nullptr);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; i++) {
    ev_json_builder_reset(b, &err);
    ev_json_builder_begin_object(b, &err);
    auto str = [&](const char* k, const char* s) {
      ev_json_builder_key(b, k, std::strlen(k), &err);
      ev_json_builder_string(b, s, std::strlen(s), &err);
    };
    auto num = [&](const char* k, const char* n) {
      ev_json_builder_key(b, k, std::strlen(k), &err);
      ev_json_builder_number(b, n, std::strlen(n), &err);
    };
    str("id", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    str("account", "acc-42");
    num("amount", "1250");
    str("currency", "EUR");
    str("at", "2024-05-01T12:30:00.250Z");
    ev_json_builder_key(b, "note", 4, &err);
    ev_json_builder_null(b, &err);
    str("reference", "INV-20240501");
    ev_json_builder_key(b, "tags", 4, &err);
    ev_json_builder_begin_array(b, &err);
    ev_json_builder_string(b, "a", 1, &err);
    ev_json_builder_string(b, "b", 1, &err);
    ev_json_builder_end_array(b, &err);
    num("rate", "1.0825");
    ev_json_builder_key(b, "confirmed", 9, &err);
    ev_json_builder_boolean(b, true, &err);
    ev_json_builder_end_object(b, &err);
    failures += !ev_json_builder_complete(b);
  }
  const double build_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / kRounds;
  ev_json_builder_free(b);
  EXPECT_EQ(failures, 0);
  std::cout << "[ schema   ] 10-property object: validate " << validate_us << " us, build via C API " << build_us
            << " us\n";
  EXPECT_LT(validate_us, 100.0);  // generous: sanitizers and slow machines
}

// --- the C API -----------------------------------------------------------------------------

struct BuilderDeleter {
  void operator()(ev_json_builder* b) const { ev_json_builder_free(b); }
};
using BuilderPtr = std::unique_ptr<ev_json_builder, BuilderDeleter>;
struct SchemaDeleter {
  void operator()(ev_schema* s) const { ev_schema_free(s); }
};
using SchemaPtr = std::unique_ptr<ev_schema, SchemaDeleter>;

ev_error Garbage() {
  ev_error err;
  std::memset(&err, 'G', sizeof err);
  return err;
}

// Feeds a Boost.JSON value to a builder the way the glue walks a jsonb; numbers as text.
void Feed(ev_json_builder* b, const boost::json::value& v, const char* number_text = nullptr) {
  ev_error err = Garbage();
  switch (v.kind()) {
    case boost::json::kind::null: ASSERT_TRUE(ev_json_builder_null(b, &err)); break;
    case boost::json::kind::bool_: ASSERT_TRUE(ev_json_builder_boolean(b, v.get_bool(), &err)); break;
    case boost::json::kind::string:
      ASSERT_TRUE(ev_json_builder_string(b, v.get_string().data(), v.get_string().size(), &err));
      break;
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: {
      std::string text = number_text ? number_text : boost::json::serialize(v);
      ASSERT_TRUE(ev_json_builder_number(b, text.data(), text.size(), &err)) << err.message;
      break;
    }
    case boost::json::kind::array:
      ASSERT_TRUE(ev_json_builder_begin_array(b, &err));
      for (const boost::json::value& e : v.get_array()) Feed(b, e);
      ASSERT_TRUE(ev_json_builder_end_array(b, &err));
      break;
    case boost::json::kind::object:
      ASSERT_TRUE(ev_json_builder_begin_object(b, &err));
      for (const auto& kv : v.get_object()) {
        ASSERT_TRUE(ev_json_builder_key(b, kv.key().data(), kv.key().size(), &err));
        Feed(b, kv.value());
      }
      ASSERT_TRUE(ev_json_builder_end_object(b, &err));
      break;
  }
}

TEST(SchemaCapi, CompileAndValidateThroughTheBuilder) {
  ev_error err = Garbage();
  BuilderPtr b(ev_json_builder_new(&err));
  ASSERT_NE(b, nullptr);
  Feed(b.get(), boost::json::parse(R"({"type": "object", "required": ["amount"],
      "properties": {"amount": {"type": "integer", "minimum": 1}}})"));
  ASSERT_TRUE(ev_json_builder_complete(b.get()));
  ev_schema* raw = nullptr;
  ASSERT_TRUE(ev_schema_compile(b.get(), &raw, &err)) << err.message;
  SchemaPtr schema(raw);

  // The builder is reused for each event's data.
  ASSERT_TRUE(ev_json_builder_reset(b.get(), &err));
  Feed(b.get(), boost::json::parse(R"({"amount": 5})"));
  err = Garbage();
  EXPECT_TRUE(ev_schema_validate(schema.get(), b.get(), "Deposited", 9, 0, &err));

  ASSERT_TRUE(ev_json_builder_reset(b.get(), &err));
  Feed(b.get(), boost::json::parse(R"({"amount": 0})"));
  err = Garbage();
  EXPECT_FALSE(ev_schema_validate(schema.get(), b.get(), "Deposited", 9, 2, &err));
  EXPECT_STREQ(err.sqlstate, "EV007");
  EXPECT_STREQ(err.message, R"(event 2 does not satisfy the schema of type "Deposited": /amount: 0 is less than minimum 1)");
  EXPECT_STREQ(err.detail, R"(JSON pointer "/amount", keyword "minimum")");
  EXPECT_TRUE(Contains(err.hint, "everest.event_schemas"));

  ASSERT_TRUE(ev_json_builder_reset(b.get(), &err));
  Feed(b.get(), boost::json::parse(R"({"amount": 1.5})"));
  EXPECT_FALSE(ev_schema_validate(schema.get(), b.get(), "Deposited", 9, 7, &err));
  EXPECT_STREQ(err.message, R"(event 7 does not satisfy the schema of type "Deposited": /amount: expected integer, got number)");

  ASSERT_TRUE(ev_json_builder_reset(b.get(), &err));
  Feed(b.get(), boost::json::parse(R"([])"));
  EXPECT_FALSE(ev_schema_validate(schema.get(), b.get(), "Deposited", 9, 0, &err));
  EXPECT_STREQ(err.message, R"(event 0 does not satisfy the schema of type "Deposited": (root): expected object, got array)");
  EXPECT_STREQ(err.detail, R"(JSON pointer "", keyword "type")");
}

TEST(SchemaCapi, NumbersComeAsNumericText) {
  ev_error err = Garbage();
  BuilderPtr b(ev_json_builder_new(&err));
  Feed(b.get(), boost::json::parse(R"({"maximum": 1})"), nullptr);
  ev_json_builder_reset(b.get(), &err);
  // {"minimum": 18446744073709551617} fed with numeric_out's text
  ASSERT_TRUE(ev_json_builder_begin_object(b.get(), &err));
  ASSERT_TRUE(ev_json_builder_key(b.get(), "minimum", 7, &err));
  ASSERT_TRUE(ev_json_builder_number(b.get(), "18446744073709551617", 20, &err));
  ASSERT_TRUE(ev_json_builder_end_object(b.get(), &err));
  ev_schema* raw = nullptr;
  ASSERT_TRUE(ev_schema_compile(b.get(), &raw, &err)) << err.message;
  SchemaPtr schema(raw);
  b.reset();  // the schema keeps nothing of the builder

  BuilderPtr d(ev_json_builder_new(&err));
  ASSERT_TRUE(ev_json_builder_number(d.get(), "18446744073709551616.9999999999", 31, &err));
  EXPECT_FALSE(ev_schema_validate(schema.get(), d.get(), "T", 1, 0, &err));
  EXPECT_STREQ(err.message, R"(event 0 does not satisfy the schema of type "T": (root): 18446744073709551616.9999999999 is less than minimum 18446744073709551617)");
  ev_json_builder_reset(d.get(), &err);
  ASSERT_TRUE(ev_json_builder_number(d.get(), "18446744073709551617.0", 22, &err));
  EXPECT_TRUE(ev_schema_validate(schema.get(), d.get(), "T", 1, 0, &err)) << err.message;

  ev_json_builder_reset(d.get(), &err);
  err = Garbage();
  EXPECT_FALSE(ev_json_builder_number(d.get(), "1e", 2, &err));
  EXPECT_STREQ(err.sqlstate, "22P02");
}

TEST(SchemaCapi, ErrorsComeBackAsRecords) {
  ev_error err = Garbage();
  BuilderPtr b(ev_json_builder_new(&err));
  Feed(b.get(), boost::json::parse(R"({"properties": {"a": {"$ref": "#"}}})"));
  ev_schema* raw = reinterpret_cast<ev_schema*>(0x1);
  EXPECT_FALSE(ev_schema_compile(b.get(), &raw, &err));
  EXPECT_EQ(raw, nullptr);
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_STREQ(err.message, R"(unsupported keyword "$ref" at /properties/a)");

  // Incomplete values are the glue's bug: XX000, not a crash.
  ev_json_builder_reset(b.get(), &err);
  ASSERT_TRUE(ev_json_builder_begin_object(b.get(), &err));
  EXPECT_FALSE(ev_schema_compile(b.get(), &raw, &err));
  EXPECT_STREQ(err.sqlstate, "XX000");
  EXPECT_FALSE(ev_json_builder_end_array(b.get(), &err));
  EXPECT_STREQ(err.sqlstate, "XX000");
  EXPECT_FALSE(ev_json_builder_string(b.get(), "v", 1, &err)) << "a member without a key";
  EXPECT_STREQ(err.sqlstate, "XX000");

  ev_json_builder_reset(b.get(), &err);
  ASSERT_TRUE(ev_json_builder_boolean(b.get(), true, &err));
  ASSERT_TRUE(ev_schema_compile(b.get(), &raw, &err));
  SchemaPtr schema(raw);
  ev_json_builder_reset(b.get(), &err);
  EXPECT_FALSE(ev_schema_validate(schema.get(), b.get(), "T", 1, 0, &err));
  EXPECT_STREQ(err.sqlstate, "XX000");
}

TEST(SchemaCapi, LongTypeNamesAndMessagesFit) {
  ev_error err = Garbage();
  BuilderPtr b(ev_json_builder_new(&err));
  Feed(b.get(), boost::json::parse(R"({"additionalProperties": false})"));
  ev_schema* raw = nullptr;
  ASSERT_TRUE(ev_schema_compile(b.get(), &raw, &err));
  SchemaPtr schema(raw);
  ev_json_builder_reset(b.get(), &err);
  const std::string key(3000, 'k');
  ASSERT_TRUE(ev_json_builder_begin_object(b.get(), &err));
  ASSERT_TRUE(ev_json_builder_key(b.get(), key.data(), key.size(), &err));
  ASSERT_TRUE(ev_json_builder_null(b.get(), &err));
  ASSERT_TRUE(ev_json_builder_end_object(b.get(), &err));
  std::string type;
  for (int i = 0; i < 300; i++) type += "\xC3\xA9";
  EXPECT_FALSE(ev_schema_validate(schema.get(), b.get(), type.data(), type.size(), 1, &err));
  EXPECT_STREQ(err.sqlstate, "EV007");
  EXPECT_TRUE(Contains(err.message, ": property is not allowed (additionalProperties is false)"));
  EXPECT_LT(std::strlen(err.message), sizeof err.message - 1);
  EXPECT_TRUE(Contains(err.message, "\xC3\xA9\": /kkk"));
}

TEST(SchemaStream, ThroughTheCapi) {
  ev_error err = Garbage();
  BuilderPtr b(ev_json_builder_new(&err));
  Feed(b.get(), boost::json::parse(R"({"type": "object", "required": ["amount"],
      "properties": {"amount": {"type": "integer", "minimum": 1}, "note": {"type": "string"}}})"));
  ev_schema* raw = nullptr;
  ASSERT_TRUE(ev_schema_compile(b.get(), &raw, &err)) << err.message;
  SchemaPtr schema(raw);
  struct CheckDeleter {
    void operator()(ev_json_check* c) const { ev_json_check_free(c); }
  };
  std::unique_ptr<ev_json_check, CheckDeleter> c(ev_json_check_new(&err));
  ASSERT_NE(c, nullptr);

  auto amount = [&](const char* text) {
    ev_json_check_start(c.get(), schema.get());
    ev_json_check_begin_object(c.get());
    ev_json_check_key(c.get(), "amount", 6);
    EXPECT_TRUE(ev_json_check_wants_number_text(c.get()));
    ev_json_check_number(c.get(), text, std::strlen(text));
    ev_json_check_key(c.get(), "note", 4);
    EXPECT_FALSE(ev_json_check_wants_number_text(c.get()));
    ev_json_check_string(c.get(), "n", 1);
    ev_json_check_end_object(c.get());
    return ev_json_check_passed(c.get());
  };
  EXPECT_TRUE(amount("5"));
  EXPECT_TRUE(amount("5.0"));
  EXPECT_FALSE(amount("0"));
  EXPECT_FALSE(amount("5.5"));
  EXPECT_FALSE(amount("1e")) << "malformed text: an exception inside, not passed, no crash";
  EXPECT_TRUE(amount("18446744073709551617"));

  ev_json_check_start(c.get(), schema.get());
  ev_json_check_begin_array(c.get());
  EXPECT_FALSE(ev_json_check_ok(c.get()));
  ev_json_check_end_object(c.get());  // tokens after a failure are ignored
  EXPECT_FALSE(ev_json_check_passed(c.get()));
}

}  // namespace
}  // namespace everest::schema
