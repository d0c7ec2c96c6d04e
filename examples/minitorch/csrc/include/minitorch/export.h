// Symbol visibility for the minitorch C++ API.
// minitorch_core is compiled with -fvisibility=hidden so only MINITORCH_API symbols
// form its ABI (what builder's C++ ABI check counts). Static builds define
// MINITORCH_STATIC for themselves and for every consumer (see CMakeLists.txt).
#pragma once

#if defined(MINITORCH_STATIC)
#define MINITORCH_API
#elif defined(_WIN32)
#if defined(MINITORCH_BUILDING)
#define MINITORCH_API __declspec(dllexport)
#else
#define MINITORCH_API __declspec(dllimport)
#endif
#else
#define MINITORCH_API __attribute__((visibility("default")))
#endif
