/* The compiled split as other extension modules see it: `_split` exports this table in the
 * capsule `engine.native._split.split_api`, so a process keeps one spinning worker and one
 * bound sgemm. */
#ifndef ENGINE_NATIVE_SPLIT_API_H
#define ENGINE_NATIVE_SPLIT_API_H

#include <stdint.h>

#define SPLIT_API_CAPSULE "engine.native._split.split_api"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm64_fn)(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                           int64_t, const float *, int64_t, float, float *, int64_t);

typedef struct {
    /* fn(mine) on this thread and fn(offered) on the worker; call without the GIL */
    void (*call)(void (*fn)(void *), void *mine, void *offered);
    /* NumPy's own ILP64 cblas_sgemm once `_split.bind` found it, else NULL */
    sgemm64_fn (*sgemm)(void);
} SplitApi;

#endif
