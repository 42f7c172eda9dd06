#ifndef CHALF_H
#define CHALF_H
#include <stddef.h>
#include <stdint.h>
/// Converts `count` Float32 values to IEEE half (round to nearest even), using F16C.
void chalf_f32_to_f16(const float *src, uint16_t *dst, size_t count);
/// Converts `count` IEEE half values to Float32, using F16C.
void chalf_f16_to_f32(const uint16_t *src, float *dst, size_t count);
#endif
