/* Everything the compiled core's C side holds, for Cython's `cdef extern from "revad.h"`:
 * the op table, then the entry kinds' loops, then the sweeps that run them. */
#ifndef REVAD_H
#define REVAD_H

#include "ops_table.h"
#include "kinds.h"
#include "group_products.h"
#include "group_ew.h"
#include "group_sums.h"
#include "group_pair.h"
#include "parallel.h"
#include "kind_table.h"
#include "sweep.h"
#include "activity.h"
#include "colouring.h"

#endif
