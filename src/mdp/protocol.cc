#include "mdp/protocol.h"

namespace plantd::mdp {

const char* DialectName(Dialect dialect) {
  switch (dialect) {
    case Dialect::kMdp01: return "MDP/0.1";
    case Dialect::kMdp02: return "MDP/0.2";
    case Dialect::kPlantd: return "plantd";
    case Dialect::kMajortomo: return "majortomo";
  }
  return "unknown";
}

}  // namespace plantd::mdp
