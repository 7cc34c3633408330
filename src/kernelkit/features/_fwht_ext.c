/* Fast Walsh-Hadamard transform for the structured orthogonal random features
 * (kernelkit/features/_fourier.py, StructuredOrthogonalFeatures).
 *
 * fwht(a): in place, along the last axis of a C-contiguous float32 or float64
 * array of rows of length m (a power of 2), unnormalised:
 *     a <- a H_m,  H_1 = [1],  H_2m = [[H_m, H_m], [H_m, -H_m]].
 * Butterflies of span h = 1, 2, 4, ..., m/2 on each row; a row of m values
 * (8 KB for m = 1024 in float64) stays in L1 through its log2(m) passes, where
 * the NumPy version streams the whole array through memory once per pass.
 * OpenMP threads take rows. Compiled for x86-64-v4, v3 and baseline (GCC
 * target clones) on x86-64.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define FW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FW_CLONES
#endif

#define DEFINE_FWHT(NAME, R)                                                          \
    FW_CLONES static void NAME(R *restrict a, int64_t rows, int64_t m, int nthreads) { \
        _Pragma("omp parallel for num_threads(nthreads) schedule(static)")            \
        for (int64_t r = 0; r < rows; r++) {                                          \
            R *restrict row = a + r * m;                                              \
            for (int64_t h = 1; h < m; h *= 2) {                                      \
                for (int64_t i = 0; i < m; i += 2 * h) {                              \
                    R *restrict x = row + i, *restrict y = row + i + h;               \
                    _Pragma("omp simd")                                               \
                    for (int64_t j = 0; j < h; j++) {                                 \
                        const R u = x[j], v = y[j];                                   \
                        x[j] = u + v;                                                 \
                        y[j] = u - v;                                                 \
                    }                                                                 \
                }                                                                     \
            }                                                                         \
        }                                                                             \
    }

DEFINE_FWHT(fwht_f32, float)
DEFINE_FWHT(fwht_f64, double)

/* fwht(a, nthreads): a C-contiguous float32/float64 array, last axis a power of 2; in place. */
static PyObject *py_fwht(PyObject *self, PyObject *args) {
    PyObject *ao;
    int nthreads;
    if (!PyArg_ParseTuple(args, "Oi", &ao, &nthreads)) return NULL;
    if (!PyArray_Check(ao) || !PyArray_IS_C_CONTIGUOUS((PyArrayObject *)ao) || !PyArray_ISWRITEABLE((PyArrayObject *)ao)) {
        PyErr_SetString(PyExc_TypeError, "fwht: a must be a writeable C-contiguous array");
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)ao;
    const int typenum = PyArray_TYPE(a);
    const int nd = PyArray_NDIM(a);
    if ((typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) || nd < 1) {
        PyErr_SetString(PyExc_TypeError, "fwht: a must be a float32 or float64 array with at least one axis");
        return NULL;
    }
    const int64_t m = PyArray_DIM(a, nd - 1);
    if (m < 1 || (m & (m - 1)) != 0 || nthreads < 1) {
        PyErr_SetString(PyExc_ValueError, "fwht: the last axis must have a power-of-2 length, nthreads >= 1");
        return NULL;
    }
    const int64_t rows = m ? PyArray_SIZE(a) / m : 0;
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32) fwht_f32((float *)PyArray_DATA(a), rows, m, nthreads);
    else fwht_f64((double *)PyArray_DATA(a), rows, m, nthreads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fwht", py_fwht, METH_VARARGS, "In-place unnormalised Walsh-Hadamard transform along the last axis."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_fwht_ext", "Fast Walsh-Hadamard transform.", -1, methods};

PyMODINIT_FUNC PyInit__fwht_ext(void) {
    import_array();
    return PyModule_Create(&moddef);
}
