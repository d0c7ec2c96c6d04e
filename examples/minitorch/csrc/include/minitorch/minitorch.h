// Umbrella header: #include <minitorch/minitorch.h>.
#pragma once

#include "minitorch/config.h"
#include "minitorch/device.h"
#include "minitorch/ops.h"
#include "minitorch/version.h"
