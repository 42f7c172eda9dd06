#ifndef CKERNELS_LANES_H
#define CKERNELS_LANES_H

// The fixed tree in which the kernels' 8 lane sums meet, in their scalar paths and (through
// stored lanes or the matching shuffles) in their AVX2 paths, so the two give the same bits:
// ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
static inline float lanes_sum(const float l[8]) {
    float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

#endif
