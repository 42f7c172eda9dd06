// Debian installs OpenBLAS's cblas.h under the multiarch include directory.
#if __has_include(<x86_64-linux-gnu/cblas.h>)
#include <x86_64-linux-gnu/cblas.h>
#elif __has_include(<aarch64-linux-gnu/cblas.h>)
#include <aarch64-linux-gnu/cblas.h>
#else
#include <cblas.h>
#endif
// Declared by OpenBLAS; repeated here so the generic cblas.h also exposes them.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_corename(void);
