// The data structures behind dispatch: the per-client fair queue and a
// service's most-spare-credit list.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "broker/fair_queue.h"
#include "broker/service.h"

namespace plantd::broker {
namespace {

class Requests {
 public:
  Request* Make(const std::string& client, uint64_t id) {
    auto r = std::make_unique<Request>();
    r->client = zmq::message_t(client.data(), client.size());
    r->id = id;
    all_.push_back(std::move(r));
    return all_.back().get();
  }

 private:
  std::vector<std::unique_ptr<Request>> all_;
};

TEST(FairQueue, ServesClientsRoundRobinAndEachInOrder) {
  Requests rs;
  FairQueue q;
  const SteadyTime t0{};
  for (uint64_t i = 1; i <= 4; ++i) q.Push(rs.Make("flood", i), t0);
  q.Push(rs.Make("light", 100), t0);
  std::vector<uint64_t> order;
  while (Request* r = q.Pop()) order.push_back(r->id);
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 100, 2, 3, 4}));
  EXPECT_TRUE(q.empty());
}

TEST(FairQueue, RedispatchedRequestsGoFirst) {
  Requests rs;
  FairQueue q;
  const SteadyTime t0{};
  q.Push(rs.Make("a", 1), t0);
  q.PushFront(rs.Make("b", 2), t0);
  EXPECT_EQ(q.Pop()->id, 2u);
  EXPECT_EQ(q.Pop()->id, 1u);
}

TEST(FairQueue, ExpiresByQueueTimeAndForgetsIdleClients) {
  Requests rs;
  FairQueue q;
  const SteadyTime t0{};
  const SteadyTime t1 = t0 + std::chrono::seconds(10);
  q.Push(rs.Make("a", 1), t0);
  q.Push(rs.Make("a", 2), t1);
  q.Push(rs.Make("b", 3), t0);
  std::vector<uint64_t> expired;
  q.RemoveQueuedBefore(t0 + std::chrono::seconds(5), [&](Request* r) { expired.push_back(r->id); });
  EXPECT_EQ(expired.size(), 2u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.Pop()->id, 2u);
  EXPECT_EQ(q.Pop(), nullptr);
  std::vector<std::string> forgotten;
  q.ForgetIdleClients(t1 + std::chrono::seconds(1),
                      [&](std::string_view c) { forgotten.emplace_back(c); });
  EXPECT_EQ(q.client_lanes(), 0u);
  std::sort(forgotten.begin(), forgotten.end());
  EXPECT_EQ(forgotten, (std::vector<std::string>{"a", "b"}));
}

TEST(FairQueue, PushSaysWhenTheClientHasANewLane) {
  Requests rs;
  FairQueue q;
  const SteadyTime t0{};
  EXPECT_TRUE(q.Push(rs.Make("a", 1), t0));
  EXPECT_FALSE(q.Push(rs.Make("a", 2), t0));
  EXPECT_TRUE(q.Push(rs.Make("b", 3), t0));
}

// A client whose connection closed: its queued requests go, other clients'
// stay in order, and re-dispatched requests (their own lane) are kept.
TEST(FairQueue, DropClientRemovesOnlyThatClientsQueuedRequests) {
  Requests rs;
  FairQueue q;
  const SteadyTime t0{};
  q.Push(rs.Make("gone", 1), t0);
  q.Push(rs.Make("stays", 2), t0);
  q.Push(rs.Make("gone", 3), t0);
  q.PushFront(rs.Make("gone", 4), t0);
  std::vector<uint64_t> dropped;
  EXPECT_EQ(q.DropClient("gone", [&](Request* r) { dropped.push_back(r->id); }), 2u);
  EXPECT_EQ(dropped, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.Pop()->id, 4u);
  EXPECT_EQ(q.Pop()->id, 2u);
  EXPECT_EQ(q.Pop(), nullptr);
  EXPECT_EQ(q.DropClient("nobody", [](Request*) {}), 0u);
  // The orphaned lane is forgotten at once and not reported (the client's
  // registry entry went with its connection); a new connection with the
  // same routing id is a new lane.
  std::vector<std::string> forgotten;
  q.ForgetIdleClients(t0 - std::chrono::hours(1),
                      [&](std::string_view c) { forgotten.emplace_back(c); });
  EXPECT_TRUE(forgotten.empty());
  EXPECT_EQ(q.client_lanes(), 1u);  // "stays": not idle long enough
  EXPECT_TRUE(q.Push(rs.Make("gone", 5), t0));
}

TEST(FairQueue, DropClientWhileItsLaneIsScheduledThenReturns) {
  Requests rs;
  FairQueue q;
  const SteadyTime t0{};
  q.Push(rs.Make("gone", 1), t0);
  q.Push(rs.Make("stays", 2), t0);
  q.DropClient("gone", [](Request*) {});
  // Same routing id on a new connection before Pop came round to the lane.
  EXPECT_TRUE(q.Push(rs.Make("gone", 3), t0));
  std::vector<uint64_t> order;
  while (Request* r = q.Pop()) order.push_back(r->id);
  EXPECT_EQ(order, (std::vector<uint64_t>{3, 2}));
}

TEST(Service, MostSpareCreditFirstThenLeastRecentlyUsed) {
  Service s("svc");
  Worker a, b, c;
  a.credit = 4;
  b.credit = 2;
  c.credit = 2;
  s.MakeAvailable(&a);
  s.MakeAvailable(&b);
  s.MakeAvailable(&c);
  Request dummy;
  std::vector<Worker*> order;
  for (int i = 0; i < 5; ++i) {
    Worker* w = s.TakeMostSpare();
    ASSERT_NE(w, nullptr);
    order.push_back(w);
    w->in_flight.push_back(&dummy);
    s.MakeAvailable(w);  // re-filed at the back of its new spare level
  }
  // a(4) a(3) then the tie at 2: b and c have waited longer than a.
  EXPECT_EQ(order, (std::vector<Worker*>{&a, &a, &b, &c, &a}));
}

TEST(Service, CreditOneIsPlainLru) {
  Service s("svc");
  Worker w1, w2, w3;
  for (Worker* w : {&w1, &w2, &w3}) s.MakeAvailable(w);
  Request dummy;
  Worker* first = s.TakeMostSpare();
  EXPECT_EQ(first, &w1);
  first->in_flight.push_back(&dummy);
  s.MakeAvailable(first);  // full: not filed
  EXPECT_EQ(s.TakeMostSpare(), &w2);
  first->in_flight.clear();
  s.MakeAvailable(first);  // done: to the back
  EXPECT_EQ(s.TakeMostSpare(), &w3);
  EXPECT_EQ(s.TakeMostSpare(), &w1);
  EXPECT_EQ(s.TakeMostSpare(), nullptr);
}

TEST(Service, WithdrawRemovesAWorkerFromAnyLevel) {
  Service s("svc");
  Worker a, b;
  a.credit = 3;
  s.MakeAvailable(&a);
  s.MakeAvailable(&b);
  s.Withdraw(&a);
  EXPECT_EQ(s.TakeMostSpare(), &b);
  EXPECT_FALSE(s.has_available());
}

}  // namespace
}  // namespace plantd::broker
