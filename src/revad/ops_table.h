/* revad's op table: every differentiable op, defined once.
 *
 * Each row gives the op's forward value and its local partial derivatives side by side, as
 * C expressions in the operands `a`, `b` and the saved output `y` (ops whose local gradient is
 * cheapest from their output, like exp, tanh and sigmoid, use `y`: the tape saves it anyway).
 * Everything else -- the op-code enum, the forward functions used while recording, the
 * reverse sweep, the forward-mode tangent sweep, the names and formulas shown in docstrings --
 * is generated from these rows.
 *
 * Where an op is not differentiable we follow PyTorch; the NOTE column says what we chose.
 * A name starting with "_" is internal: it gets no public function.
 *
 * UNARY(CODE, name, forward(a), d/da, note)
 * BINARY(CODE, name, forward(a, b), d/da, d/db, note)
 */
#ifndef REVAD_OPS_TABLE_H
#define REVAD_OPS_TABLE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "vmath.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Helpers so the table rows stay one line each. */
static inline double rv_sigmoid(double a) {
    /* Two branches so exp never overflows: both are exact forms of 1/(1+e^-a). */
    if (a >= 0) return 1.0 / (1.0 + exp(-a));
    double e = exp(a);
    return e / (1.0 + e);
}
static inline double rv_softplus(double a) { return fmax(a, 0.0) + log1p(exp(-fabs(a))); }
static inline double rv_sign(double a) { return a > 0 ? 1.0 : (a < 0 ? -1.0 : (a == 0 ? 0.0 : a)); }
/* d(a**b)/da: PyTorch takes 0 where b == 0, so that x**0 is flat even at x = 0. */
static inline double rv_dpow_da(double a, double b) { return b == 0 ? 0.0 : b * pow(a, b - 1.0); }
/* d(a**b)/db = a**b log a; PyTorch takes 0 at a == 0, b >= 0 instead of 0 * -inf. */
static inline double rv_dpow_db(double a, double b, double y) {
    return (a == 0 && b >= 0) ? 0.0 : y * log(a);
}
/* maximum/minimum at a tie: the gradient is split evenly, as in PyTorch. */
/* The seed's local gradients from the saved output, y(1-y) and 1-y^2, cancel catastrophically
 * where y nears 1 (at a = 30 they lose every digit); sigmoid's takes an exact form without 1-y
 * there, and tanh's is sech^2 a from a itself (vmath.h). */
static inline double rv_dsigmoid(double a, double y) { return a <= 0 ? y * (1.0 - y) : y * y * exp(-a); }
/* NumPy's maximum/minimum propagate nan from either side (C's fmax/fmin do not). */
static inline double rv_max(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double rv_min(double a, double b) { return (a < b || a != a) ? a : b; }
static inline double rv_dmax(double a, double b) { return a > b ? 1.0 : (a == b ? 0.5 : 0.0); }

#define REVAD_UNARY_OPS(U) \
    U(NEG,      "negative", -a,                -1.0,                               "") \
    U(ABS,      "abs",      fabs(a),           rv_sign(a),                         "abs'(0) = 0, as PyTorch") \
    U(SQUARE,   "square",   a * a,             2.0 * a,                            "") \
    U(EXP,      "exp",      exp(a),            y,                                  "") \
    U(LOG,      "log",      log(a),            1.0 / a,                            "log(0) = -inf and log of a negative is nan, as NumPy") \
    U(LOG1P,    "log1p",    log1p(a),          1.0 / (1.0 + a),                    "") \
    U(EXPM1,    "expm1",    expm1(a),          exp(a),                             "") \
    U(SQRT,     "sqrt",     sqrt(a),           0.5 / y,                            "sqrt'(0) = inf, as PyTorch") \
    U(SIN,      "sin",      sin(a),            cos(a),                             "") \
    U(COS,      "cos",      cos(a),            -sin(a),                            "") \
    U(TAN,      "tan",      tan(a),            1.0 + y * y,                        "") \
    U(ARCSIN,   "arcsin",   asin(a),           1.0 / sqrt(1.0 - a * a),            "derivative is inf at +-1") \
    U(ARCCOS,   "arccos",   acos(a),           -1.0 / sqrt(1.0 - a * a),           "derivative is -inf at +-1") \
    U(ARCTAN,   "arctan",   atan(a),           1.0 / (1.0 + a * a),                "") \
    U(SINH,     "sinh",     sinh(a),           cosh(a),                            "") \
    U(COSH,     "cosh",     cosh(a),           sinh(a),                            "") \
    U(TANH,     "tanh",     rv_vm_tanh(a),     rv_vm_dtanh(a),                     "") \
    U(SIGMOID,  "sigmoid",  rv_sigmoid(a),     rv_dsigmoid(a, y),                  "") \
    U(RELU,     "relu",     (a > 0 || a != a) ? a : 0.0, a > 0 ? 1.0 : 0.0, "relu'(0) = 0, relu(nan) = nan") \
    U(SOFTPLUS, "softplus", rv_softplus(a),    rv_sigmoid(a),                      "") \
    U(ERF,      "erf",      erf(a),            1.1283791670955126 * exp(-a * a),   "") \
    U(COPY,     "_copy",    a,                 1.0,                                "internal: the gather of an array element")

#define REVAD_BINARY_OPS(B) \
    B(ADD,     "add",      a + b,          1.0,                     1.0,                          "") \
    B(SUB,     "subtract", a - b,          1.0,                     -1.0,                         "") \
    B(MUL,     "multiply", a * b,          b,                       a,                            "") \
    B(DIV,     "divide",   a / b,          1.0 / b,                 -y / b,                       "") \
    B(POW,     "power",    pow(a, b),      rv_dpow_da(a, b),        rv_dpow_db(a, b, y),          "d/da = 0 where b == 0; d/db = 0 where a == 0 and b >= 0, as PyTorch") \
    B(MAXIMUM, "maximum",  rv_max(a, b),   rv_dmax(a, b),           1.0 - rv_dmax(a, b),          "at a tie the gradient is split evenly, as PyTorch; nan propagates") \
    B(MINIMUM, "minimum",  rv_min(a, b),   1.0 - rv_dmax(a, b),     rv_dmax(a, b),                "at a tie the gradient is split evenly, as PyTorch; nan propagates") \
    B(ARCTAN2, "arctan2",  atan2(a, b),    b / (a * a + b * b),     -a / (a * a + b * b),         "the gradient at (0, 0) is nan, as PyTorch") \
    B(HYPOT,   "hypot",    hypot(a, b),    a / y,                   b / y,                        "the gradient at (0, 0) is nan, as PyTorch")

/* Comparisons carry no gradient; they are recorded so that a replayed tape can check that it
 * takes the branches the recording took. */
#define REVAD_COMPARE_OPS(C) \
    C(LT, "less",          a < b)  \
    C(LE, "less_equal",    a <= b) \
    C(GT, "greater",       a > b)  \
    C(GE, "greater_equal", a >= b) \
    C(EQ, "equal",         a == b) \
    C(NE, "not_equal",     a != b)

/* Op codes. Each binary op has three: both operands on the tape (VV), the second a constant
 * from the tape's constant pool (VC, `x * 2.0`), or the first (CV, `2.0 / x`). A constant is
 * an immediate, never a node. */
#define RV_ENUM_U(N, name, f, da, ...) RV_##N,
#define RV_ENUM_B(N, name, f, da, db, ...) RV_##N, RV_##N##_VC, RV_##N##_CV,
#define RV_ENUM_C(N, name, f) RV_##N, RV_##N##_VC, RV_##N##_CV,
enum rv_op {
    RV_LEAF = 0,
    REVAD_UNARY_OPS(RV_ENUM_U)
    REVAD_BINARY_OPS(RV_ENUM_B)
    REVAD_COMPARE_OPS(RV_ENUM_C)
    RV_CONST,   /* a constant node: a saved value with no operands and no gradient (not an input) */
    RV_DOTC,    /* block entries, below */
    RV_DOT,
    /* Groups and their placeholders come last: the reverse sweep tests `op >= RV_MM`. */
    RV_MM,      /* a matrix product group: its last output slot (below) */
    RV_EW,      /* an elementwise group (one array op): its last output slot (below) */
    RV_SUMS,    /* a sum group (a reduction along axes): its last output slot (below) */
    RV_MMP,     /* a group's other output slots: placeholders the sweeps pass over */
    RV_N_OPS
};

/* Forward values. Inlined with a constant op code, each switch folds to its one row. */
#define RV_FWD_U(N, name, f, da, ...) case RV_##N: return (f);
static inline double rv_unary(int op, double a) {
    switch (op) { REVAD_UNARY_OPS(RV_FWD_U) default: return NAN; }
}
#define RV_FWD_B(N, name, f, da, db, ...) case RV_##N: return (f);
#define RV_FWD_C(N, name, f) case RV_##N: return (f) ? 1.0 : 0.0;
static inline double rv_binary(int op, double a, double b) {
    switch (op) {
        REVAD_BINARY_OPS(RV_FWD_B)
        REVAD_COMPARE_OPS(RV_FWD_C)
        default: return NAN;
    }
}

/* Names and formulas as text, for docstrings and error messages. */
#define RV_NAME_U(N, name, f, da, note) {RV_##N, 1, name, #f, #da, "", note},
#define RV_NAME_B(N, name, f, da, db, note) {RV_##N, 2, name, #f, #da, #db, note},
#define RV_NAME_C(N, name, f) {RV_##N, 0, name, #f, "0", "0", "no gradient"},
typedef struct {
    int code;
    int arity; /* 0 marks a comparison */
    const char *name, *forward, *d_da, *d_db, *note;
} rv_op_info;
static const rv_op_info rv_op_table[] = {
    REVAD_UNARY_OPS(RV_NAME_U)
    REVAD_BINARY_OPS(RV_NAME_B)
    REVAD_COMPARE_OPS(RV_NAME_C)
};
static const int rv_n_op_table = (int)(sizeof(rv_op_table) / sizeof(rv_op_table[0]));

#endif
