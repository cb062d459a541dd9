// Per-thread worker of adaptrl's native MuJoCo backend (adaptrl/physics/native.py).
//
// The Python thread pool calls adaptrl_worker once per thread through ctypes (which releases the
// GIL); the threads share an atomic counter over the env indices, so the whole batch is stepped
// without touching the Python interpreter. Semantics are those of the pure-Python loop in
// native.py (which remains the fallback when no C compiler is available); the test suite checks
// that both give bit-identical states.
#include <stdint.h>
#include <mujoco/mujoco.h>

enum { TRACK_ROOT_X = 0, TRACK_BODY = 1, TRACK_COM = 2 };
enum { EXTRA_CFRC_EXT = 0, EXTRA_CINERT = 1, EXTRA_CVEL = 2, EXTRA_QFRC_ACTUATOR = 3 };

// Planar position of the tracked point from the last forward pass (Gymnasium v5's reading).
static void track_point(const mjModel* m, const mjData* d, int track, int body,
                        double total_mass, double* xy) {
  if (track == TRACK_BODY) {
    xy[0] = d->xpos[3 * body];
    xy[1] = d->xpos[3 * body + 1];
  } else if (track == TRACK_COM) {
    // numpy's sum(mass[:, None] * xipos, axis=0) accumulates row by row, in body order.
    double sx = 0.0, sy = 0.0;
    for (int b = 0; b < m->nbody; b++) {
      sx += m->body_mass[b] * d->xipos[3 * b];
      sy += m->body_mass[b] * d->xipos[3 * b + 1];
    }
    xy[0] = sx / total_mass;
    xy[1] = sy / total_mass;
  }
}

static double* copy_extras(const mjModel* m, const mjData* d, int nextras, const int32_t* codes,
                           double* out, int zero_cfrc) {
  for (int e = 0; e < nextras; e++) {
    switch (codes[e]) {
      case EXTRA_CFRC_EXT:
        if (zero_cfrc) mju_zero(out, 6 * m->nbody);
        else mju_copy(out, d->cfrc_ext, 6 * m->nbody);
        out += 6 * m->nbody;
        break;
      case EXTRA_CINERT:
        mju_copy(out, d->cinert, 10 * m->nbody);
        out += 10 * m->nbody;
        break;
      case EXTRA_CVEL:
        mju_copy(out, d->cvel, 6 * m->nbody);
        out += 6 * m->nbody;
        break;
      case EXTRA_QFRC_ACTUATOR:
        mju_copy(out, d->qfrc_actuator, m->nv);
        out += m->nv;
        break;
    }
  }
  return out;
}

// mode 0 (step): rows_out[i] = state after nstep mj_step from rows_in[i] with ctrl[i]; a pending
//   row first runs Gymnasium's reset forward pass (zero controls, mj_forward) and gets its tracked
//   point written to rows_in[i][ns:].
// mode 1 (reset): rows_out[i] = rows_in[i] after the reset forward pass (cfrc_ext reported 0,
//   since Gymnasium's reset never computes it).
// Rows are [state (ns doubles), track_x, track_y], stride ns + 2.
int adaptrl_worker(int mode, int64_t n, const uint64_t* model_ptrs, uint64_t data_ptr,
                   int64_t* counter, double* rows_in, double* rows_out, const double* ctrl,
                   const uint8_t* pending, const double* total_mass, int spec, int ns, int nstep,
                   int rne, int track, int track_body, int nextras, const int32_t* extra_codes,
                   double* extras_out, int64_t extras_stride) {
  mjData* d = (mjData*)(uintptr_t)data_ptr;
  const int64_t stride = ns + 2;
  for (;;) {
    int64_t i = __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
    if (i >= n) break;
    const mjModel* m = (const mjModel*)(uintptr_t)model_ptrs[i];
    double* in = rows_in + i * stride;
    double* out = rows_out + i * stride;
    double* ex = extras_out + i * extras_stride;
    mj_setState(m, d, in, spec);
    if (mode == 1 || pending[i]) {
      mju_zero(d->ctrl, m->nu);
      mj_forward(m, d);
      if (track != TRACK_ROOT_X) track_point(m, d, track, track_body, total_mass[i], in + ns);
      if (mode == 1) {
        mj_getState(m, d, out, spec);  // keeps the warm start the forward pass produced
        if (track != TRACK_ROOT_X) {
          out[ns] = in[ns];
          out[ns + 1] = in[ns + 1];
        }
        copy_extras(m, d, nextras, extra_codes, ex, 1);
        continue;
      }
    }
    mju_copy(d->ctrl, ctrl + i * m->nu, m->nu);
    for (int k = 0; k < nstep; k++) mj_step(m, d);
    if (rne) mj_rnePostConstraint(m, d);
    mj_getState(m, d, out, spec);
    if (track != TRACK_ROOT_X) track_point(m, d, track, track_body, total_mass[i], out + ns);
    copy_extras(m, d, nextras, extra_codes, ex, 0);
  }
  return 0;
}
