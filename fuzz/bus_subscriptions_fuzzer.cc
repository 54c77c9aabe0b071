// A bus's subscriptions (bus/prefix_trie.h), fed as subscribers send them:
// frames whose first byte is 1 (subscribe) or 0 (cancel) and whose rest is
// the topic prefix (ZMTP 3.0 subscriptions, as Bus::ReceiveFromSubscribers
// reads them; ZMTP 3.1's SUBSCRIBE and CANCEL commands reach the same trie
// and are fuzzed through the connection in fuzz_zmtp_null). A first byte of
// 2 publishes the topic: the trie's match is compared with every prefix of
// it looked up in a plain map of the same subscriptions, as are the counts
// after every step and the prefixes it lists.
//
// Input: records of a subscriber byte (its slot), a length byte and that
// many bytes of frame.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus/prefix_trie.h"
#include "check.h"

namespace {

using plantd::bus::PrefixTrie;
using plantd::fuzz::Check;
using Id = PrefixTrie::SubscriberId;

// The model: for each prefix, how many subscriptions each subscriber holds.
using Model = std::map<std::string, std::map<Id, uint32_t>, std::less<>>;

void CheckTotals(const PrefixTrie& trie, const Model& model) {
  size_t subscriptions = 0;
  for (const auto& [prefix, holders] : model) {
    for (const auto& [id, count] : holders) subscriptions += count;
  }
  Check(trie.subscriptions() == subscriptions, "subscriptions() disagrees with the model");
  Check(trie.active_prefixes() == model.size(), "active_prefixes() disagrees with the model");
  // Compact: each node without holders branches, so the nodes are at most
  // twice the active prefixes (and the root).
  Check(trie.node_count() <= 2 * model.size() + 1, "the trie keeps nodes it no longer needs");
}

void CheckMatch(PrefixTrie& trie, const Model& model, std::string_view topic,
                std::vector<Id>* matched) {
  trie.Match(topic, matched);
  std::set<Id> expected;
  for (size_t n = 0; n <= topic.size(); ++n) {
    auto it = model.find(topic.substr(0, n));
    if (it == model.end()) continue;
    for (const auto& [id, count] : it->second) expected.insert(id);
  }
  const std::set<Id> got(matched->begin(), matched->end());
  Check(got.size() == matched->size(), "a subscriber matched twice");
  Check(got == expected, "Match() disagrees with the model");
}

void CheckActive(const PrefixTrie& trie, const Model& model) {
  std::set<std::string> listed;
  trie.ForEachActive([&listed](std::string_view prefix) {
    Check(listed.emplace(prefix).second, "ForEachActive() lists a prefix twice");
  });
  Check(listed.size() == model.size(), "ForEachActive() disagrees with the model");
  for (const auto& [prefix, holders] : model) {
    Check(listed.count(prefix) == 1, "ForEachActive() misses an active prefix");
  }
}

void Subscribe(PrefixTrie& trie, Model& model, std::string_view topic, Id id) {
  auto [it, first] = model.try_emplace(std::string(topic));
  Check(trie.Add(topic, id) == first, "Add() says new for a held prefix, or the reverse");
  const uint32_t count = ++it->second[id];
  Check(trie.Count(topic, id) == count, "Count() disagrees after Add()");
}

void Cancel(PrefixTrie& trie, Model& model, std::string_view topic, Id id) {
  auto it = model.find(topic);
  const bool held = it != model.end() && it->second.count(id) == 1;
  bool inactive = true;
  Check(trie.Remove(topic, id, &inactive) == held, "Remove() disagrees on what was held");
  if (!held) {
    Check(!inactive, "Remove() of nothing made a prefix inactive");
    return;
  }
  const uint32_t left = --it->second[id];
  if (left == 0) it->second.erase(id);
  const bool gone = it->second.empty();
  if (gone) model.erase(it);
  Check(inactive == gone, "Remove() disagrees on the prefix becoming inactive");
  Check(trie.Count(topic, id) == left, "Count() disagrees after Remove()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  PrefixTrie trie;
  Model model;
  std::vector<Id> matched;
  size_t at = 0;
  while (at + 2 <= size) {
    const Id id = data[at];
    const size_t length = std::min<size_t>(data[at + 1], size - at - 2);
    const std::string_view frame(reinterpret_cast<const char*>(data) + at + 2, length);
    at += 2 + length;
    if (frame.empty()) continue;
    const std::string_view topic = frame.substr(1);
    switch (frame[0]) {
      case 0: Cancel(trie, model, topic, id); break;
      case 1: Subscribe(trie, model, topic, id); break;
      case 2: CheckMatch(trie, model, topic, &matched); break;
      default: continue;  // the bus ignores other messages from subscribers
    }
    CheckTotals(trie, model);
  }
  CheckActive(trie, model);
  // Everything cancelled, the trie is back to its root alone.
  while (!model.empty()) {
    const auto& [prefix, holders] = *model.begin();
    Cancel(trie, model, std::string(prefix), holders.begin()->first);
  }
  CheckTotals(trie, model);
  Check(trie.node_count() == 1, "nodes left after every subscription was cancelled");
  return 0;
}
