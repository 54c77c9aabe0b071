// The bus's last-value cache: prefix lookups visit matching topics only,
// and what publishers choose (topics, sizes) cannot grow it without bound.
#include "bus/last_value_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace plantd::bus {
namespace {

bool Store(LastValueCache& cache, const std::string& topic, const std::string& body) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(topic.data(), topic.size());
  frames.emplace_back(body.data(), body.size());
  return cache.Store(frames.data(), frames.size());
}

std::vector<std::string> Matching(const LastValueCache& cache, const std::string& prefix,
                                  size_t stop_after = 1000) {
  std::vector<std::string> out;
  cache.ForEachMatching(prefix, [&](const std::vector<zmq::message_t>& frames) {
    out.push_back(frames[0].to_string() + "=" + frames[1].to_string());
    return out.size() < stop_after;
  });
  return out;
}

TEST(LastValueCacheTest, KeepsTheLatestValuePerTopicAndFindsThemByPrefix) {
  LastValueCache cache;
  EXPECT_TRUE(Store(cache, "temp.a", "1"));
  EXPECT_TRUE(Store(cache, "temp.b", "2"));
  EXPECT_TRUE(Store(cache, "temp.a", "3"));
  EXPECT_TRUE(Store(cache, "tem", "4"));
  EXPECT_TRUE(Store(cache, "pres", "5"));
  EXPECT_EQ(Matching(cache, "temp."), (std::vector<std::string>{"temp.a=3", "temp.b=2"}));
  EXPECT_EQ(Matching(cache, "tem"),
            (std::vector<std::string>{"tem=4", "temp.a=3", "temp.b=2"}));
  EXPECT_EQ(Matching(cache, "").size(), 4u);
  EXPECT_EQ(Matching(cache, "x"), std::vector<std::string>{});
  EXPECT_EQ(Matching(cache, "tem", 1).size(), 1u) << "the callback ends the walk";
}

TEST(LastValueCacheTest, BoundedInTopicsAndInBytes) {
  LastValueCache cache(/*max_topics=*/3, /*max_bytes=*/100);
  EXPECT_TRUE(Store(cache, "a", std::string(10, 'x')));
  EXPECT_TRUE(Store(cache, "b", std::string(10, 'x')));
  EXPECT_TRUE(Store(cache, "c", std::string(10, 'x')));
  EXPECT_FALSE(Store(cache, "d", "x")) << "a fourth topic";
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.bytes(), 33u);
  // A value that does not fit: not kept, and the old one is not served stale.
  EXPECT_FALSE(Store(cache, "a", std::string(90, 'y')));
  EXPECT_EQ(Matching(cache, "a"), std::vector<std::string>{});
  EXPECT_EQ(cache.bytes(), 22u);
  EXPECT_TRUE(Store(cache, "d", std::string(70, 'z'))) << "room again";
  EXPECT_EQ(cache.bytes(), 93u);
}

}  // namespace
}  // namespace plantd::bus
