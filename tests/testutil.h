/* Minimal test harness: assertions print the expression, both values and the
 * location, count failures, and the test's main returns the verdict. */
#ifndef EXOSBI_TESTUTIL_H
#define EXOSBI_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "exosbi/core.h"

static int sbi_test_failures = 0;
static int sbi_test_checks = 0;

#define SBI_ASSERT(cond)                                                                  \
    do {                                                                                  \
        ++sbi_test_checks;                                                                \
        if (!(cond)) {                                                                    \
            ++sbi_test_failures;                                                          \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                                 \
    } while (0)

#define SBI_ASSERT_EQ_INT(a, b)                                                           \
    do {                                                                                  \
        long long sbi__a = (long long)(a), sbi__b = (long long)(b);                       \
        ++sbi_test_checks;                                                                \
        if (sbi__a != sbi__b) {                                                           \
            ++sbi_test_failures;                                                          \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld vs %lld\n", __FILE__, __LINE__, \
                    #a, #b, sbi__a, sbi__b);                                              \
        }                                                                                 \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define SBI_ASSERT_NEAR(a, b, rtol, atol)                                                 \
    do {                                                                                  \
        double sbi__a = (double)(a), sbi__b = (double)(b);                                \
        ++sbi_test_checks;                                                                \
        if (!(fabs(sbi__a - sbi__b) <= (atol) + (rtol) * fabs(sbi__b))) {                 \
            ++sbi_test_failures;                                                          \
            fprintf(stderr, "%s:%d: %s ~ %s failed: %.17g vs %.17g (rtol %g, atol %g)\n", \
                    __FILE__, __LINE__, #a, #b, sbi__a, sbi__b, (double)(rtol),           \
                    (double)(atol));                                                      \
        }                                                                                 \
    } while (0)

/* A library call that must succeed (status 0). */
#define SBI_ASSERT_OK(expr)                                                               \
    do {                                                                                  \
        int sbi__s = (expr);                                                              \
        ++sbi_test_checks;                                                                \
        if (sbi__s != 0) {                                                                \
            ++sbi_test_failures;                                                          \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr,     \
                    sbi__s, sbi_error_message());                                         \
        }                                                                                 \
    } while (0)

/* Print the summary line and return the exit status for main. */
#define SBI_TEST_REPORT(name)                                                             \
    (printf("%s: %d checks, %d failed\n", (name), sbi_test_checks, sbi_test_failures),    \
     sbi_test_failures ? 1 : 0)

#endif
