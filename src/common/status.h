// The project's error type is public (libplantd uses it too).
#pragma once

#include "plantd/status.h"
