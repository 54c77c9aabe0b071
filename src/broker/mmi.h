// Management answered by the broker itself: 8/MMI (`mmi.*`) and plantd's
// `org.plantd.Broker` service.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker_stats.h"

namespace plantd::broker {

// Builds the snapshot only when an answer needs it (mmi.heartbeat does not).
using SnapshotSource = std::function<const BrokerSnapshot&()>;

// 8/MMI. `service` starts with "mmi."; `body` is the request body. Returns the
// reply body: mmi.service -> "200"/"404"; mmi.workers -> count; mmi.services
// and mmi.broker -> JSON; mmi.heartbeat -> the body; anything else -> "501".
std::vector<std::string> AnswerMmi(std::string_view service,
                                   const std::vector<std::string_view>& body,
                                   const SnapshotSource& snapshot);

// org.plantd.Broker: ["services", json] or ["service", {"service": NAME}].
// Always answers one JSON frame; errors carry an "error" member.
std::vector<std::string> AnswerBrokerService(const std::vector<std::string_view>& body,
                                             const SnapshotSource& snapshot);

}  // namespace plantd::broker
