/* The x86-64-v4 build of the fused engine (AVX-512F/BW/DQ/VL, 512-bit vectors): the same source as
 * _fused_ext.c, compiled by setup.py with -march=x86-64-v4. Imported only on
 * CPUs that support it (kernelkit/engine/_fused.py). */
#define KK_MODULE _fused_v4_ext
#define KK_CLONE_NAME "x86-64-v4"
#define KK_VBYTES 64
#include "_fused_ext.c"
