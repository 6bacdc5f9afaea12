// http::InlineFunction: holds any callable that fits, moves it, destroys it exactly once.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "http/inline_function.h"

namespace balanced::http {
namespace {

// Counts live copies of itself, so that a leak or a double destruction shows.
struct Counted {
  explicit Counted(int* live) : live(live) { ++*live; }
  Counted(Counted&& other) noexcept : live(other.live) { ++*live; }
  Counted(const Counted& other) : live(other.live) { ++*live; }
  ~Counted() { --*live; }
  int* live;
};

TEST(InlineFunction, CallsWhatItHoldsWithReferencesAndMovesIt) {
  InlineFunction<void(std::string&), 64> append = [suffix = std::string("-tail")](std::string& s) {
    s += suffix;
  };
  ASSERT_TRUE(append);
  std::string text = "head";
  append(text);
  EXPECT_EQ(text, "head-tail");

  InlineFunction<void(std::string&), 64> moved = std::move(append);
  EXPECT_FALSE(append);  // NOLINT(bugprone-use-after-move): moved-from is empty, by contract
  ASSERT_TRUE(moved);
  moved(text);
  EXPECT_EQ(text, "head-tail-tail");

  InlineFunction<int(int), 16> empty;
  EXPECT_FALSE(empty);
  InlineFunction<int(int), 16> twice = [](int x) { return 2 * x; };
  EXPECT_EQ(twice(21), 42);
}

TEST(InlineFunction, DestroysItsCallableOnceWhateverTheMoves) {
  int live = 0;
  {
    InlineFunction<int(), 48> a = [counted = Counted(&live), owned = std::make_unique<int>(7)] {
      return *owned;
    };
    EXPECT_EQ(live, 1);
    InlineFunction<int(), 48> b = std::move(a);
    EXPECT_EQ(live, 1);
    EXPECT_EQ(b(), 7);
    InlineFunction<int(), 48> c = [counted = Counted(&live)] { return 1; };
    EXPECT_EQ(live, 2);
    c = std::move(b);  // c's own callable is destroyed, b's moves in
    EXPECT_EQ(live, 1);
    EXPECT_EQ(c(), 7);
    c = InlineFunction<int(), 48>();
    EXPECT_EQ(live, 0);
    InlineFunction<int(), 48> d = [counted = Counted(&live)] { return 2; };
    EXPECT_EQ(live, 1);
  }
  EXPECT_EQ(live, 0);
}

}  // namespace
}  // namespace balanced::http
