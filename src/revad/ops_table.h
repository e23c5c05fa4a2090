/* revad's op table: every differentiable op, defined once.
 *
 * Each row gives the op's forward value and its local partial derivatives side by side, as
 * C expressions in the operands `a`, `b` and the saved output `y` (ops whose local gradient is
 * cheapest from their output, like exp, tanh and sigmoid, use `y`: the tape saves it anyway).
 * Everything else -- the op-code enum, the forward functions used while recording, the
 * reverse sweep, the forward-mode tangent sweep, the array loops, and on the Python side the
 * functions (revad.exp), the Var methods (x.exp()), the NumPy ufunc map (np.exp(x)) and the
 * docstrings with their examples -- is generated from these rows. Adding an op is one row here,
 * its reference row in tests/test_ops.py, and the stub lines (revad/_core.pyi, __init__.pyi)
 * that tests/test_ops.py names.
 *
 * U(CODE, name, forward(a), d/da, LAZY, EXAMPLE, NOTE,
 *                          d2/da2)
 * B(CODE, name, forward(a, b), d/da, d/db, LAZY, EXAMPLE, NOTE,
 *                                d2/da2, d2/dadb, d2/db2)
 *
 * The second partials (for the second-order sweep, sweep.h's rv_second_order) come last, on a
 * line of their own under the first partials: every consumer names the columns it reads and
 * takes the rest as `...`, so one that reads no second partial never sees them. They are
 * expressions in a, b, y as well; where the first partial is piecewise constant (sign, floor,
 * relu's and maximum's) they are 0, and where a first partial takes a constant branch (pow's
 * d/da at b == 0, d/db at a == 0), so do the second partials of that branch.
 * LAZY is `lazy` or `eager`. `lazy` lets an array op leave its values unwritten until something
 * reads them, and lets a sum over it compute them on the fly (group_ew.h, rv_ew_lazy): only
 * for rows whose partials read the operands, never y, and whose forward is cheap enough to
 * compute twice (tests/test_lazy.py checks the first).
 * EXAMPLE is the docstring's example, "x -> value d/dx" or "x, y -> value d/dx d/dy" with the
 * results printed to 6 decimals and computed independently (mpmath, not revad); the docstring
 * runs it as a doctest. Internal rows take "".
 * NOTE says what we chose where the op is not differentiable (we follow PyTorch), or "".
 * A name starting with "_" is internal: it gets no public function.
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
/* NumPy's fmax/fmin (C's) skip nan; the gradient goes to the operand they return (all of it to
 * a when both are nan), and at a tie it is split evenly as maximum's. */
static inline double rv_dfmax(double a, double b) { return b != b ? 1.0 : (a != a ? 0.0 : rv_dmax(a, b)); }
static inline double rv_dfmin(double a, double b) { return b != b ? 1.0 : (a != a ? 0.0 : 1.0 - rv_dmax(a, b)); }
/* NumPy's logaddexp and logaddexp2 (npy_logaddexp): a tie, equal infinities included, is
 * a + log(2) (a + 1), never inf - inf. */
static inline double rv_logaddexp(double a, double b) {
    if (a == b) return a + 0.6931471805599453;
    double d = a - b;
    return d > 0 ? a + log1p(exp(-d)) : (d <= 0 ? b + log1p(exp(d)) : d);
}
static inline double rv_logaddexp2(double a, double b) {
    if (a == b) return a + 1.0;
    double d = a - b;
    return d > 0 ? a + 1.4426950408889634 * log1p(exp2(-d))
                 : (d <= 0 ? b + 1.4426950408889634 * log1p(exp2(d)) : d);
}
/* d logaddexp(a, b)/da = e^a / (e^a + e^b) = sigmoid(a - b), from a and b: 1 - the other
 * partial would lose the small one's digits, and a - y would be nan at equal infinities. */
static inline double rv_dlogaddexp(double a, double b) { return a == b ? 0.5 : rv_sigmoid(a - b); }
static inline double rv_dlogaddexp2(double a, double b) {
    return a == b ? 0.5 : rv_sigmoid(0.6931471805599453 * (a - b));
}
/* NumPy's remainder and floor_divide (npy_divmod): the remainder takes the divisor's sign, and
 * the quotient is the one the remainder pairs with (floor(a / b) can differ: 1 // 0.1 is 9). */
static inline double rv_remainder(double a, double b) {
    double m = fmod(a, b);
    if (!b) return m;
    if (m) return ((b < 0) != (m < 0)) ? m + b : m;
    return copysign(0.0, b);
}
static inline double rv_floor_divide(double a, double b) {
    double m = fmod(a, b);
    if (!b) return a / b;
    double q = (a - m) / b;
    if (m && ((b < 0) != (m < 0))) q -= 1.0;
    if (!q) return copysign(0.0, a / b);
    double f = floor(q);
    return q - f > 0.5 ? f + 1.0 : f;
}
/* fmod's quotient, toward zero: the integer (a - fmod(a, b)) / b, rounded off its last bits. */
static inline double rv_fmod_quotient(double a, double b) {
    if (!b) return a / b;
    return rint((a - fmod(a, b)) / b);
}
/* np.sinc: sin(pi a) / (pi a), 1 at 0. Its derivative pi (t cos t - sin t) / t^2 (t = pi a)
 * cancels near 0, where its series serves instead (terms to t^11: relative error < 1e-14 for
 * |t| < 0.5; the direct form loses under a digit there). */
static inline double rv_sinc(double a) {
    double t = M_PI * a;
    return a == 0 ? 1.0 : sin(t) / t;
}
static inline double rv_dsinc(double a) {
    double t = M_PI * a, t2 = t * t;
    if (fabs(t) < 0.5)
        return M_PI * t * (-1.0 / 3 + t2 * (1.0 / 30 + t2 * (-1.0 / 840 + t2 * (1.0 / 45360
               + t2 * (-1.0 / 3991680 + t2 * (1.0 / 518918400))))));
    return M_PI * (t * cos(t) - sin(t)) / t2;
}

/* Second partials (the rows' last columns). sigmoid'' = sigmoid' (1 - 2 sigmoid), and
 * 1 - 2 sigmoid(a) = -tanh(a / 2) without the cancellation near a = 0. */
static inline double rv_d2sigmoid(double a, double y) { return -rv_dsigmoid(a, y) * rv_vm_tanh(0.5 * a); }
/* arcsinh'' = -a / (1 + a^2)^(3/2), arccosh'' = -a / (a^2 - 1)^(3/2): divided (multiplied) by
 * the root three times, so that neither overflows where the result does not. */
static inline double rv_d2arcsinh(double a) { const double h = hypot(1.0, a); return -a / h / h / h; }
static inline double rv_d2arccosh(double a) {
    const double d = 1.0 / (sqrt(a - 1.0) * sqrt(a + 1.0));
    return -a * d * d * d;
}
/* sinc'' = pi^2 ((2 - t^2) sin t - 2 t cos t) / t^3 (t = pi a), its series near 0 as rv_dsinc's
 * (terms to t^12: relative error < 1e-15 for |t| < 0.5). */
static inline double rv_d2sinc(double a) {
    const double t = M_PI * a, t2 = t * t;
    if (fabs(t) < 0.5)
        return M_PI * M_PI * (-1.0 / 3 + t2 * (1.0 / 10 + t2 * (-1.0 / 168 + t2 * (1.0 / 6480
               + t2 * (-1.0 / 443520 + t2 * (1.0 / 47174400 + t2 * (-1.0 / 7185024000.0)))))));
    return M_PI * M_PI * ((2.0 - t2) * sin(t) - 2.0 * t * cos(t)) / (t2 * t);
}
/* pow's: d2/da2 = b (b - 1) a^(b-2), 0 where b is 0 or 1 (x**0 and x**1 have no curvature, even
 * at x = 0, where the formula is 0 * inf); d2/dadb = a^(b-1) (1 + b log a) and d2/db2 = y log^2 a,
 * 0 where a == 0 and b >= 0, the branch where d/db is taken as 0 (rv_dpow_db). */
static inline double rv_d2pow_da2(double a, double b) {
    return (b == 0 || b == 1) ? 0.0 : b * (b - 1.0) * pow(a, b - 2.0);
}
static inline double rv_d2pow_dadb(double a, double b) {
    if (a == 0 && b >= 0) return 0.0;
    const double p = pow(a, b - 1.0);
    return b == 0 ? p : p * (1.0 + b * log(a));  /* (b == 0: 1/a, also where log a is nan) */
}
static inline double rv_d2pow_db2(double a, double b, double y) {
    return (a == 0 && b >= 0) ? 0.0 : y * log(a) * log(a);
}
/* arctan2's: -2ab / r^4 and (a^2 - b^2) / r^4 (r^2 = a^2 + b^2), each factor divided by r^2
 * apart, so that r^4 never overflows; nan at (0, 0) as the first partials. */
static inline double rv_d2atan2_da2(double a, double b) {
    const double r = a * a + b * b;
    return -2.0 * (a / r) * (b / r);
}
static inline double rv_d2atan2_dadb(double a, double b) {
    const double r = a * a + b * b;
    return ((a - b) / r) * ((a + b) / r);
}
/* logaddexp's: sigmoid'(a - b) = sigmoid(d) sigmoid(-d), the same for d2/da2 and d2/db2 and
 * minus it for d2/dadb; 1/4 at a tie, as the first partials' 1/2 (equal infinities too). */
static inline double rv_d2logaddexp(double a, double b) {
    const double d = a - b;
    return a == b ? 0.25 : rv_sigmoid(d) * rv_sigmoid(-d);
}
static inline double rv_d2logaddexp2(double a, double b) {
    const double d = 0.6931471805599453 * (a - b);
    return 0.6931471805599453 * (a == b ? 0.25 : rv_sigmoid(d) * rv_sigmoid(-d));
}

#define REVAD_UNARY_OPS(U) \
    U(NEG,      "negative", -a,                -1.0,                             lazy,  "0.5 -> -0.500000 -1.000000", "", \
                                               0.0) \
    U(ABS,      "abs",      fabs(a),           rv_sign(a),                       eager, "-0.5 -> 0.500000 -1.000000", "abs'(0) = 0, as PyTorch", \
                                               0.0) \
    U(SQUARE,   "square",   a * a,             2.0 * a,                          lazy,  "0.5 -> 0.250000 1.000000",   "", \
                                               2.0) \
    U(EXP,      "exp",      exp(a),            y,                                eager, "0.5 -> 1.648721 1.648721",   "", \
                                               y) \
    U(LOG,      "log",      log(a),            1.0 / a,                          eager, "2.0 -> 0.693147 0.500000",   "log(0) = -inf and log of a negative is nan, as NumPy", \
                                               -1.0 / (a * a)) \
    U(LOG1P,    "log1p",    log1p(a),          1.0 / (1.0 + a),                  eager, "0.5 -> 0.405465 0.666667",   "", \
                                               -1.0 / ((1.0 + a) * (1.0 + a))) \
    U(EXPM1,    "expm1",    expm1(a),          exp(a),                           eager, "0.5 -> 0.648721 1.648721",   "", \
                                               exp(a)) \
    U(SQRT,     "sqrt",     sqrt(a),           0.5 / y,                          eager, "4.0 -> 2.000000 0.250000",   "sqrt'(0) = inf, as PyTorch", \
                                               -0.25 / (a * y)) \
    U(SIN,      "sin",      sin(a),            cos(a),                           eager, "0.5 -> 0.479426 0.877583",   "", \
                                               -y) \
    U(COS,      "cos",      cos(a),            -sin(a),                          eager, "0.5 -> 0.877583 -0.479426",  "", \
                                               -y) \
    U(TAN,      "tan",      tan(a),            1.0 + y * y,                      eager, "0.5 -> 0.546302 1.298446",   "", \
                                               2.0 * y * (1.0 + y * y)) \
    U(ARCSIN,   "arcsin",   asin(a),           1.0 / sqrt(1.0 - a * a),          eager, "0.5 -> 0.523599 1.154701",   "derivative is inf at +-1", \
                                               a / ((1.0 - a * a) * sqrt(1.0 - a * a))) \
    U(ARCCOS,   "arccos",   acos(a),           -1.0 / sqrt(1.0 - a * a),         eager, "0.5 -> 1.047198 -1.154701",  "derivative is -inf at +-1", \
                                               -a / ((1.0 - a * a) * sqrt(1.0 - a * a))) \
    U(ARCTAN,   "arctan",   atan(a),           1.0 / (1.0 + a * a),              eager, "0.5 -> 0.463648 0.800000",   "", \
                                               -2.0 * a / ((1.0 + a * a) * (1.0 + a * a))) \
    U(SINH,     "sinh",     sinh(a),           cosh(a),                          eager, "0.5 -> 0.521095 1.127626",   "", \
                                               y) \
    U(COSH,     "cosh",     cosh(a),           sinh(a),                          eager, "0.5 -> 1.127626 0.521095",   "", \
                                               y) \
    U(TANH,     "tanh",     rv_vm_tanh(a),     rv_vm_dtanh(a),                   eager, "0.5 -> 0.462117 0.786448",   "", \
                                               -2.0 * y * rv_vm_dtanh(a)) \
    U(SIGMOID,  "sigmoid",  rv_sigmoid(a),     rv_dsigmoid(a, y),                eager, "0.5 -> 0.622459 0.235004",   "", \
                                               rv_d2sigmoid(a, y)) \
    U(RELU,     "relu",     (a > 0 || a != a) ? a : 0.0, a > 0 ? 1.0 : 0.0,      eager, "-0.5 -> 0.000000 0.000000",  "relu'(0) = 0, relu(nan) = nan", \
                                                         0.0) \
    U(SOFTPLUS, "softplus", rv_softplus(a),    rv_sigmoid(a),                    eager, "0.5 -> 0.974077 0.622459",   "", \
                                               rv_dsigmoid(a, rv_sigmoid(a))) \
    U(ERF,      "erf",      erf(a),            1.1283791670955126 * exp(-a * a), eager, "0.5 -> 0.520500 0.878783",   "", \
                                               -2.2567583341910252 * a * exp(-a * a)) \
    U(LOG2,     "log2",     log2(a),           1.4426950408889634 / a,           eager, "8.0 -> 3.000000 0.180337",   "log2(0) = -inf and log2 of a negative is nan, as NumPy", \
                                               -1.4426950408889634 / (a * a)) \
    U(LOG10,    "log10",    log10(a),          0.4342944819032518 / a,           eager, "100.0 -> 2.000000 0.004343", "log10(0) = -inf and log10 of a negative is nan, as NumPy", \
                                               -0.4342944819032518 / (a * a)) \
    U(EXP2,     "exp2",     exp2(a),           0.6931471805599453 * y,           eager, "3.0 -> 8.000000 5.545177",   "", \
                                               0.4804530139182014 * y) \
    U(ARCSINH,  "arcsinh",  asinh(a),          1.0 / hypot(1.0, a),              eager, "0.5 -> 0.481212 0.894427",   "", \
                                               rv_d2arcsinh(a)) \
    U(ARCCOSH,  "arccosh",  acosh(a),          1.0 / (sqrt(a - 1.0) * sqrt(a + 1.0)), eager, "2.0 -> 1.316958 0.577350", "derivative is inf at 1", \
                                               rv_d2arccosh(a)) \
    U(ARCTANH,  "arctanh",  atanh(a),          1.0 / ((1.0 - a) * (1.0 + a)),    eager, "0.5 -> 0.549306 1.333333",   "derivative is inf at +-1", \
                                               2.0 * a / (((1.0 - a) * (1.0 + a)) * ((1.0 - a) * (1.0 + a)))) \
    U(CBRT,     "cbrt",     cbrt(a),           1.0 / (3.0 * y * y),              eager, "8.0 -> 2.000000 0.083333",   "derivative is inf at 0", \
                                               -2.0 / (9.0 * a * y * y)) \
    U(RECIPROCAL, "reciprocal", 1.0 / a,       -y * y,                           eager, "4.0 -> 0.250000 -0.062500",  "", \
                                               2.0 * y * y * y) \
    U(SINC,     "sinc",     rv_sinc(a),        rv_dsinc(a),                      eager, "0.5 -> 0.636620 -1.273240",  "", \
                                               rv_d2sinc(a)) \
    U(FABS,     "fabs",     fabs(a),           rv_sign(a),                       eager, "-0.5 -> 0.500000 -1.000000", "fabs'(0) = 0, as PyTorch's abs", \
                                               0.0) \
    U(SIGN,     "sign",     rv_sign(a),        0.0,                              lazy,  "-2.5 -> -1.000000 0.000000", "its derivative is taken as 0 everywhere, at the jump at 0 too, as autograd and PyTorch", \
                                               0.0) \
    U(FLOOR,    "floor",    floor(a),          0.0,                              lazy,  "2.5 -> 2.000000 0.000000",   "its derivative is taken as 0 everywhere, at the jumps (the integers) too, as autograd and PyTorch", \
                                               0.0) \
    U(CEIL,     "ceil",     ceil(a),           0.0,                              lazy,  "2.5 -> 3.000000 0.000000",   "its derivative is taken as 0 everywhere, at the jumps (the integers) too, as autograd and PyTorch", \
                                               0.0) \
    U(RINT,     "rint",     rint(a),           0.0,                              lazy,  "2.5 -> 2.000000 0.000000",   "its derivative is taken as 0 everywhere, at the jumps (the half-integers) too, as autograd and PyTorch; halves round to even, as NumPy", \
                                               0.0) \
    U(TRUNC,    "trunc",    trunc(a),          0.0,                              lazy,  "-2.5 -> -2.000000 0.000000", "its derivative is taken as 0 everywhere, at the jumps (the integers but 0) too, as autograd and PyTorch", \
                                               0.0) \
    U(DEG2RAD,  "deg2rad",  a * (M_PI / 180.0), M_PI / 180.0,                    lazy,  "180.0 -> 3.141593 0.017453", "", \
                                                0.0) \
    U(RADIANS,  "radians",  a * (M_PI / 180.0), M_PI / 180.0,                    lazy,  "180.0 -> 3.141593 0.017453", "", \
                                                0.0) \
    U(RAD2DEG,  "rad2deg",  a * (180.0 / M_PI), 180.0 / M_PI,                    lazy,  "1.0 -> 57.295780 57.295780", "", \
                                                0.0) \
    U(DEGREES,  "degrees",  a * (180.0 / M_PI), 180.0 / M_PI,                    lazy,  "1.0 -> 57.295780 57.295780", "", \
                                                0.0) \
    U(POSITIVE, "positive", a,                 1.0,                              lazy,  "0.5 -> 0.500000 1.000000",   "", \
                                               0.0) \
    U(CONJUGATE, "conjugate", a,               1.0,                              lazy,  "0.5 -> 0.500000 1.000000",   "", \
                                               0.0) \
    U(COPY,     "_copy",    a,                 1.0,                              eager, "",                           "internal: the gather of an array element", \
                                               0.0) \
    U(SHIFT,    "_shift",   isfinite(a) ? a : 0.0, 0.0,                          eager, "",                           "internal: logsumexp's stabilising shift while a trace records (a constant to the derivative)", \
                                               0.0)

#define REVAD_BINARY_OPS(B) \
    B(ADD,     "add",      a + b,        1.0,                 1.0,                   lazy,  "1.0, 2.0 -> 3.000000 1.000000 1.000000",   "", \
                                         0.0,                 0.0,                   0.0) \
    B(SUB,     "subtract", a - b,        1.0,                 -1.0,                  lazy,  "1.0, 2.0 -> -1.000000 1.000000 -1.000000", "", \
                                         0.0,                 0.0,                   0.0) \
    B(MUL,     "multiply", a * b,        b,                   a,                     lazy,  "3.0, 2.0 -> 6.000000 2.000000 3.000000",   "", \
                                         0.0,                 1.0,                   0.0) \
    B(DIV,     "divide",   a / b,        1.0 / b,             -y / b,                eager, "3.0, 2.0 -> 1.500000 0.500000 -0.750000",  "", \
                                         0.0,                 -1.0 / (b * b),        2.0 * y / (b * b)) \
    B(POW,     "power",    pow(a, b),    rv_dpow_da(a, b),    rv_dpow_db(a, b, y),   eager, "3.0, 2.0 -> 9.000000 6.000000 9.887511",   "d/da = 0 where b == 0; d/db = 0 where a == 0 and b >= 0, as PyTorch", \
                                         rv_d2pow_da2(a, b),  rv_d2pow_dadb(a, b),   rv_d2pow_db2(a, b, y)) \
    B(MAXIMUM, "maximum",  rv_max(a, b), rv_dmax(a, b),       1.0 - rv_dmax(a, b),   eager, "1.0, 2.0 -> 2.000000 0.000000 1.000000",   "at a tie the gradient is split evenly, as PyTorch; nan propagates", \
                                         0.0,                 0.0,                   0.0) \
    B(MINIMUM, "minimum",  rv_min(a, b), 1.0 - rv_dmax(a, b), rv_dmax(a, b),         eager, "1.0, 2.0 -> 1.000000 1.000000 0.000000",   "at a tie the gradient is split evenly, as PyTorch; nan propagates", \
                                         0.0,                 0.0,                   0.0) \
    B(ARCTAN2, "arctan2",  atan2(a, b),  b / (a * a + b * b), -a / (a * a + b * b),  eager, "1.0, 2.0 -> 0.463648 0.400000 -0.200000",  "the gradient at (0, 0) is nan, as PyTorch", \
                                         rv_d2atan2_da2(a, b), rv_d2atan2_dadb(a, b), -rv_d2atan2_da2(a, b)) \
    B(HYPOT,   "hypot",    hypot(a, b),  a / y,               b / y,                 eager, "3.0, 4.0 -> 5.000000 0.600000 0.800000",   "the gradient at (0, 0) is nan, as PyTorch", \
                                         (b / y) * (b / y) / y, -(a / y) * (b / y) / y, (a / y) * (a / y) / y) \
    B(LOGADDEXP, "logaddexp", rv_logaddexp(a, b), rv_dlogaddexp(a, b), rv_dlogaddexp(b, a), eager, "1.0, 2.0 -> 2.313262 0.268941 0.731059", "", \
                                                  rv_d2logaddexp(a, b), -rv_d2logaddexp(a, b), rv_d2logaddexp(a, b)) \
    B(LOGADDEXP2, "logaddexp2", rv_logaddexp2(a, b), rv_dlogaddexp2(a, b), rv_dlogaddexp2(b, a), eager, "1.0, 2.0 -> 2.584963 0.333333 0.666667", "", \
                                                     rv_d2logaddexp2(a, b), -rv_d2logaddexp2(a, b), rv_d2logaddexp2(a, b)) \
    B(FMAX,    "fmax",     fmax(a, b),   rv_dfmax(a, b),      1.0 - rv_dfmax(a, b),  eager, "1.0, 2.0 -> 2.000000 0.000000 1.000000",   "at a tie the gradient is split evenly, as maximum; a nan operand is skipped, as NumPy, and gets none", \
                                         0.0,                 0.0,                   0.0) \
    B(FMIN,    "fmin",     fmin(a, b),   rv_dfmin(a, b),      1.0 - rv_dfmin(a, b),  eager, "1.0, 2.0 -> 1.000000 1.000000 0.000000",   "at a tie the gradient is split evenly, as minimum; a nan operand is skipped, as NumPy, and gets none", \
                                         0.0,                 0.0,                   0.0) \
    B(REMAINDER, "remainder", rv_remainder(a, b), 1.0,        -rv_floor_divide(a, b), eager, "-7.5, 2.0 -> 0.500000 1.000000 4.000000", "d/db is minus the floor quotient NumPy pairs with the value (as PyTorch), also at the jumps, where a / b is an integer", \
                                                  0.0,        0.0,                    0.0) \
    B(FMOD,    "fmod",     fmod(a, b),   1.0,                 -rv_fmod_quotient(a, b), eager, "-7.5, 2.0 -> -1.500000 1.000000 3.000000", "d/db is minus the quotient toward zero, also at the jumps, where a / b is an integer", \
                                         0.0,                 0.0,                     0.0)

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
    RV_GUARD,   /* a traced value that escaped into Python (float(v), a mask, ...): slot arg0 had
                 * the saved value, bit for bit; arg1 unused. A replay checks it (revad.trace) */
    RV_DOTC,    /* block entries, below */
    RV_DOT,
    /* Groups and their placeholders come last: the reverse sweep tests `op >= RV_MM`. */
    RV_MM,      /* a matrix product group: its last output slot (below) */
    RV_EW,      /* an elementwise group (one array op): its last output slot (below) */
    RV_SUMS,    /* a sum group (a reduction along axes): its last output slot (below) */
    RV_CALL,    /* a Python function's outputs (revad.primitive): its last output slot (below) */
    RV_PAIR,    /* a SciPy ufunc's group, its partials saved (group_pair.h): its last output slot */
    RV_GROUP_SLOT, /* a group's other output slots: placeholders the sweeps pass over */
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

/* The LAZY column as a number. A value other than `lazy` or `eager` fails to compile here,
 * naming itself (RV_LAZY_<value> undeclared). */
#define RV_LAZY_lazy 1
#define RV_LAZY_eager 0
#define RV_LAZY_U(N, name, f, da, lazy, ...) case RV_##N: return RV_LAZY_##lazy;
#define RV_LAZY_B(N, name, f, da, db, lazy, ...) case RV_##N: return RV_LAZY_##lazy;
/* Whether a row is marked lazy; with a constant op code it folds to the row's flag. */
static inline int rv_op_lazy(int64_t op) {
    switch (op) {
        REVAD_UNARY_OPS(RV_LAZY_U)
        REVAD_BINARY_OPS(RV_LAZY_B)
        default: return 0;
    }
}

/* Every row as text and flags, for the Python side: the functions, the Var methods, the ufunc
 * map, docstrings and error messages are built from this at import (_core_functions.pxi). */
#define RV_NAME_U(N, name, f, da, lazy, example, note, daa) \
    {RV_##N, 1, name, #f, #da, "", note, example, RV_LAZY_##lazy, #daa, "", ""},
#define RV_NAME_B(N, name, f, da, db, lazy, example, note, daa, dab, dbb) \
    {RV_##N, 2, name, #f, #da, #db, note, example, RV_LAZY_##lazy, #daa, #dab, #dbb},
#define RV_NAME_C(N, name, f) {RV_##N, 0, name, #f, "0", "0", "no gradient", "", 0, "0", "0", "0"},
typedef struct {
    int code;
    int arity; /* 0 marks a comparison */
    const char *name, *forward, *d_da, *d_db, *note;
    const char *example; /* "x -> value d/dx" or "x, y -> value d/dx d/dy"; "" for internal rows */
    int lazy;
    const char *d2_da2, *d2_dadb, *d2_db2; /* the second partials ("" where the row has none) */
} rv_op_info;
static const rv_op_info rv_op_table[] = {
    REVAD_UNARY_OPS(RV_NAME_U)
    REVAD_BINARY_OPS(RV_NAME_B)
    REVAD_COMPARE_OPS(RV_NAME_C)
};
static const int rv_n_op_table = (int)(sizeof(rv_op_table) / sizeof(rv_op_table[0]));

#endif
