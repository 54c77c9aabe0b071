// The bus's subscription trie: ZeroMQ prefix semantics on raw bytes,
// counted duplicates, at most one delivery per subscriber, and a tree that
// shrinks back when subscriptions go.
#include "bus/prefix_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace plantd::bus {
namespace {

using Ids = std::vector<PrefixTrie::SubscriberId>;

Ids Matches(PrefixTrie& trie, std::string_view topic) {
  Ids out;
  trie.Match(topic, &out);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(PrefixTrieTest, MatchesByPrefixAndTheEmptyPrefixMatchesEverything) {
  PrefixTrie trie;
  EXPECT_TRUE(trie.Add("temp", 1));
  EXPECT_TRUE(trie.Add("temp.room", 2));
  EXPECT_TRUE(trie.Add("", 3));
  EXPECT_TRUE(trie.Add("pres", 4));
  EXPECT_EQ(Matches(trie, "temp.room.1"), (Ids{1, 2, 3}));
  EXPECT_EQ(Matches(trie, "temp.roo"), (Ids{1, 3}));
  EXPECT_EQ(Matches(trie, "temp"), (Ids{1, 3}));
  EXPECT_EQ(Matches(trie, "tem"), (Ids{3}));
  EXPECT_EQ(Matches(trie, "pressure"), (Ids{3, 4}));
  EXPECT_EQ(Matches(trie, ""), (Ids{3}));
  EXPECT_EQ(Matches(trie, "other"), (Ids{3}));
  EXPECT_EQ(trie.active_prefixes(), 4u);
  EXPECT_EQ(trie.subscriptions(), 4u);
}

TEST(PrefixTrieTest, ASubscriberWithSeveralMatchingPrefixesIsDeliveredOnce) {
  PrefixTrie trie;
  trie.Add("", 7);
  trie.Add("a", 7);
  trie.Add("ab", 7);
  trie.Add("ab", 7);
  trie.Add("abc", 8);
  EXPECT_EQ(Matches(trie, "abcd"), (Ids{7, 8}));
  // And again on the next message (the marks are per message).
  EXPECT_EQ(Matches(trie, "abx"), (Ids{7}));
}

TEST(PrefixTrieTest, DuplicateSubscriptionsAreCountedAndCancelledOneByOne) {
  PrefixTrie trie;
  EXPECT_TRUE(trie.Add("x", 1));
  EXPECT_FALSE(trie.Add("x", 1)) << "already active";
  EXPECT_FALSE(trie.Add("x", 2)) << "already active";
  EXPECT_EQ(trie.Count("x", 1), 2u);
  EXPECT_EQ(trie.Count("x", 2), 1u);
  EXPECT_EQ(trie.subscriptions(), 3u);
  EXPECT_EQ(trie.active_prefixes(), 1u);

  bool inactive = true;
  EXPECT_TRUE(trie.Remove("x", 1, &inactive));
  EXPECT_FALSE(inactive);
  EXPECT_EQ(Matches(trie, "x1"), (Ids{1, 2})) << "1 still holds one";
  EXPECT_TRUE(trie.Remove("x", 1, &inactive));
  EXPECT_FALSE(inactive) << "2 still holds it";
  EXPECT_EQ(Matches(trie, "x1"), (Ids{2}));
  EXPECT_FALSE(trie.Remove("x", 1, &inactive)) << "1 holds none any more";
  EXPECT_TRUE(trie.Remove("x", 2, &inactive));
  EXPECT_TRUE(inactive);
  EXPECT_EQ(Matches(trie, "x1"), Ids{});
  EXPECT_EQ(trie.subscriptions(), 0u);
  EXPECT_EQ(trie.active_prefixes(), 0u);
}

TEST(PrefixTrieTest, RemovingWhatWasNeverAddedChangesNothing) {
  PrefixTrie trie;
  trie.Add("abc", 1);
  bool inactive = true;
  EXPECT_FALSE(trie.Remove("ab", 1, &inactive)) << "a branch point is not a subscription";
  EXPECT_FALSE(trie.Remove("abcd", 1, &inactive));
  EXPECT_FALSE(trie.Remove("abc", 2, &inactive));
  EXPECT_FALSE(inactive);
  EXPECT_EQ(Matches(trie, "abcd"), (Ids{1}));
  EXPECT_EQ(trie.subscriptions(), 1u);
}

TEST(PrefixTrieTest, BinaryTopicsMatchByteForByte) {
  PrefixTrie trie;
  const std::string zero_prefix("\x00\x01", 2);
  const std::string high_prefix("\xff\x80", 2);
  const std::string nul_inside("a\0b", 3);
  trie.Add(zero_prefix, 1);
  trie.Add(high_prefix, 2);
  trie.Add(nul_inside, 3);
  trie.Add(std::string("a", 1), 4);
  EXPECT_EQ(Matches(trie, std::string("\x00\x01\x02", 3)), (Ids{1}));
  EXPECT_EQ(Matches(trie, std::string("\x00\x02", 2)), Ids{});
  EXPECT_EQ(Matches(trie, std::string("\xff\x80\x00", 3)), (Ids{2}));
  EXPECT_EQ(Matches(trie, std::string("\xff\x7f", 2)), Ids{});
  EXPECT_EQ(Matches(trie, std::string("a\0bc", 4)), (Ids{3, 4}));
  EXPECT_EQ(Matches(trie, std::string("a\0c", 3)), (Ids{4}));
  EXPECT_EQ(Matches(trie, "a"), (Ids{4})) << "a topic shorter than the prefix does not match";
}

// Against the obvious implementation, with random binary prefixes on a small
// alphabet so that edges split and merge often.
TEST(PrefixTrieTest, AgreesWithALinearScanThroughRandomAddsAndRemoves) {
  PrefixTrie trie;
  std::map<std::pair<std::string, uint32_t>, uint32_t> model;  // (prefix, id) -> count
  std::mt19937 rng(12345);
  auto random_string = [&](size_t max_length) {
    std::string s(rng() % (max_length + 1), '\0');
    for (char& c : s) c = static_cast<char>("ab\x00\xff"[rng() % 4]);
    return s;
  };
  for (int step = 0; step < 20000; ++step) {
    const std::string prefix = random_string(5);
    const uint32_t id = rng() % 8;
    if (rng() % 3 != 0) {
      bool was_active = false;
      for (const auto& [key, count] : model) was_active |= key.first == prefix;
      EXPECT_EQ(trie.Add(prefix, id), !was_active);
      ++model[{prefix, id}];
    } else {
      bool inactive = false;
      auto it = model.find({prefix, id});
      const bool held = it != model.end();
      EXPECT_EQ(trie.Remove(prefix, id, &inactive), held);
      if (held && --it->second == 0) model.erase(it);
      bool still_active = false;
      for (const auto& [key, count] : model) still_active |= key.first == prefix;
      if (held) {
        EXPECT_EQ(inactive, !still_active);
      }
    }
    if (step % 50 == 0) {
      const std::string topic = random_string(7);
      std::set<uint32_t> expected;
      for (const auto& [key, count] : model) {
        if (topic.compare(0, key.first.size(), key.first) == 0) expected.insert(key.second);
      }
      EXPECT_EQ(Matches(trie, topic), Ids(expected.begin(), expected.end())) << step;
    }
  }
  size_t total = 0;
  for (const auto& [key, count] : model) total += count;
  EXPECT_EQ(trie.subscriptions(), total);
  std::set<std::string> active;
  trie.ForEachActive([&](std::string_view p) { active.emplace(p); });
  std::set<std::string> expected_active;
  for (const auto& [key, count] : model) expected_active.insert(key.first);
  EXPECT_EQ(active, expected_active);
  EXPECT_EQ(trie.active_prefixes(), expected_active.size());
}

TEST(PrefixTrieTest, TheTreeShrinksBackWhenSubscriptionsGo) {
  PrefixTrie trie;
  std::vector<std::string> prefixes;
  for (int i = 0; i < 1000; ++i) prefixes.push_back("sensor." + std::to_string(i * 7919));
  for (const auto& p : prefixes) trie.Add(p, 1);
  EXPECT_GT(trie.node_count(), 1000u);
  bool inactive = false;
  for (const auto& p : prefixes) ASSERT_TRUE(trie.Remove(p, 1, &inactive));
  EXPECT_EQ(trie.node_count(), 1u) << "only the root is left";
  EXPECT_EQ(Matches(trie, "sensor.0"), Ids{});
}

// The point of the structure: a message's cost does not depend on how many
// subscriptions others hold on topics it does not match.
TEST(PrefixTrieTest, MatchingCostDoesNotGrowWithForeignSubscriptions) {
  auto time_matches = [](PrefixTrie& trie) {
    Ids out;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200000; ++i) trie.Match("telemetry.plant1.temperature", &out);
    return std::chrono::steady_clock::now() - start;
  };
  PrefixTrie trie;
  trie.Add("telemetry.", 1);
  const auto without = time_matches(trie);
  for (int i = 0; i < 100000; ++i) trie.Add("junk." + std::to_string(i), 2);
  const auto with = time_matches(trie);
  Ids out;
  trie.Match("telemetry.plant1.temperature", &out);
  EXPECT_EQ(out, (Ids{1}));
  // Generous: a linear scan would be thousands of times slower.
  EXPECT_LT(with, without * 5 + std::chrono::milliseconds(20));
}

}  // namespace
}  // namespace plantd::bus
