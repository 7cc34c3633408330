/* The x86-64-v3 build of the fused engine (AVX2 + FMA, 256-bit vectors): the same source as
 * _fused_ext.c, compiled by setup.py with -march=x86-64-v3. Imported only on
 * CPUs that support it (kernelkit/engine/_fused.py). */
#define KK_MODULE _fused_v3_ext
#define KK_CLONE_NAME "x86-64-v3"
#define KK_VBYTES 32
#include "_fused_ext.c"
