// XLA FFI custom call of adaptrl's native MuJoCo backend (adaptrl/physics/native.py).
//
// One call steps (or resets) a whole batch of environments: XLA hands over its buffers, the
// envs are spread over a small persistent thread pool (the calling thread works too), and the
// packed outputs are written straight into XLA's result buffers. Nothing on this path touches
// Python, which is what makes it cheaper per scan step than the pure_callback path (whose
// semantics, in native.py's NativeBatch.step / reset and _native_kernel.c, this file reproduces
// bit for bit; the test suite compares them).
//
// Per-task physics parameters are applied here too, to per-env-slot copies of the default model
// that a host owns, rewritten only when a slot's parameters change. Doing it inside the call
// (under the host's mutex) keeps each call atomic: two calls on the same robot never see each
// other's slot models or scratch data.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <mujoco/mujoco.h>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum { TRACK_ROOT_X = 0, TRACK_BODY = 1, TRACK_COM = 2 };
enum { EXTRA_CFRC_EXT = 0, EXTRA_CINERT = 1, EXTRA_CVEL = 2, EXTRA_QFRC_ACTUATOR = 3 };
// Bit k of the call's param_mask: field k of robots.PARAM_FIELDS is in the packed params.
enum { F_BODY_MASS, F_BODY_INERTIA, F_DOF_DAMPING, F_DOF_ARMATURE, F_GEOM_FRICTION, F_COUNT };

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A model field that tasks may change, and its number of doubles.
double* param_field(mjModel* m, int code, int64_t* size) {
  switch (code) {
    case F_BODY_MASS: *size = m->nbody; return m->body_mass;
    case F_BODY_INERTIA: *size = 3 * m->nbody; return m->body_inertia;
    case F_DOF_DAMPING: *size = m->nv; return m->dof_damping;
    case F_DOF_ARMATURE: *size = m->nv; return m->dof_armature;
    default: *size = 3 * m->ngeom; return m->geom_friction;
  }
}

// np.sum of a contiguous float64 vector, bit for bit: NumPy's pairwise summation.
double numpy_sum(const double* a, int64_t n) {
  if (n < 8) {
    double res = -0.0;
    for (int64_t i = 0; i < n; i++) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    int64_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_sum(a, n2) + numpy_sum(a + n2, n - n2);
}

// Batch-parallel pool: Run(n, fn) calls fn(k, i) for i in [0, n), k being the calling thread's
// index (0 for the caller). Threads claim indices one at a time, so a thread with cheap envs
// (fewer contacts) takes more, and the caller never waits for a worker that has not started
// (on a loaded machine a worker may not get a core in time; the caller then does it all).
// Idle workers sleep at once by default: spinning between calls (ADAPTRL_NATIVE_SPIN_US > 0)
// was measured to be slower on 2 cores, because the spinner takes a core from XLA's own work
// between the calls; on machines with spare cores a short spin may save the wake-up latency.
class Pool {
 public:
  Pool(int nthreads, int spin_us) : spin_(std::chrono::microseconds(spin_us)) {
    for (int k = 1; k < nthreads; k++) threads_.emplace_back([this, k] { Loop(k); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true);
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void Run(int64_t n, const std::function<void(int, int64_t)>& fn) {
    if (threads_.empty() || n <= 1) {  // nothing to share: skip the hand-off
      for (int64_t i = 0; i < n; i++) fn(0, i);
      return;
    }
    // Publish the job: fn and n first, then the (generation, next index) word that claims
    // are made on. Claims of the previous generation can no longer succeed.
    fn_.store(&fn, std::memory_order_relaxed);
    n_.store(n, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    const uint64_t gen = (claim_.load(std::memory_order_relaxed) >> 32) + 1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      claim_.store(gen << 32, std::memory_order_release);
    }
    wake_.notify_all();
    const int64_t mine = Work(0, gen);
    // Only envs a worker has claimed are waited for; each takes tens of microseconds.
    if (done_.fetch_add(mine, std::memory_order_acq_rel) + mine == n) return;
    for (int i = 1; done_.load(std::memory_order_acquire) != n; i++) {
      cpu_relax();
      if ((i & 255) == 0) std::this_thread::yield();
    }
  }

 private:
  // Claims and runs envs of generation `gen` until none is left; returns how many it ran.
  int64_t Work(int k, uint64_t gen) {
    int64_t count = 0;
    for (;;) {
      uint64_t c = claim_.load(std::memory_order_acquire);
      if ((c >> 32) != gen) break;
      // Read after seeing `gen`; valid if the claim below succeeds, since a job's fn and n
      // are replaced only after all of its envs have been claimed and run.
      const auto* fn = fn_.load(std::memory_order_relaxed);
      const int64_t i = static_cast<int64_t>(c & 0xffffffffu);
      if (i >= n_.load(std::memory_order_relaxed)) break;
      if (!claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) continue;
      (*fn)(k, i);
      count++;
    }
    return count;
  }

  void Loop(int k) {
    uint64_t seen = 0;
    auto ready = [&] {
      return stop_.load(std::memory_order_relaxed) ||
             (claim_.load(std::memory_order_acquire) >> 32) != seen;
    };
    for (;;) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 1; !ready(); i++) {
        const bool timed_out =
            (i & 255) == 0 && std::chrono::steady_clock::now() - start > spin_;
        if (spin_.count() == 0 || timed_out) {
          std::unique_lock<std::mutex> lock(mu_);
          wake_.wait(lock, ready);
          break;
        }
        cpu_relax();
        if ((i & 255) == 0) std::this_thread::yield();  // a runnable thread here goes first
      }
      if (stop_.load()) return;
      seen = claim_.load(std::memory_order_acquire) >> 32;
      const int64_t count = Work(k, seen);
      if (count) done_.fetch_add(count, std::memory_order_acq_rel);
    }
  }

  const std::chrono::microseconds spin_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> claim_{0};  // generation << 32 | next env index
  std::atomic<const std::function<void(int, int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> n_{0};
  std::atomic<int64_t> done_{0};  // envs finished in the current generation
  std::atomic<bool> stop_{false};
};

// Everything one robot's calls need; created once per (robot, threads) from Python.
struct Host {
  const mjModel* model;  // the default model, owned (and kept alive) by Python
  int nq, nv, nu, ns, spec, nstep, rne, track, track_body;
  std::vector<int32_t> extra_codes;
  std::vector<double> init_qpos, init_qvel;
  double total_mass;
  std::unique_ptr<Pool> pool;
  std::vector<mjData*> datas;  // one scratch MjData per pool thread
  std::vector<std::vector<double>> rows;  // and one (ns + 2) row of doubles
  std::mutex mu;               // one call at a time: scratch data and slot models are shared
  // Per-env-slot models for per-task physics, the packed params they hold, and their masses.
  std::vector<mjModel*> slots;
  std::vector<std::vector<float>> slot_params;
  std::vector<int32_t> slot_mask;
  std::vector<double> slot_mass;
};

std::mutex g_hosts_mu;
std::vector<Host*> g_hosts;  // never freed: hosts live as long as the process

// Planar position of the tracked point from the last forward pass (Gymnasium v5's reading).
void track_point(const Host& h, const mjModel* m, const mjData* d, double mass, double* xy) {
  if (h.track == TRACK_BODY) {
    xy[0] = d->xpos[3 * h.track_body];
    xy[1] = d->xpos[3 * h.track_body + 1];
  } else if (h.track == TRACK_COM) {
    // numpy's sum(mass[:, None] * xipos, axis=0) accumulates row by row, in body order.
    double sx = 0.0, sy = 0.0;
    for (int b = 0; b < m->nbody; b++) {
      sx += m->body_mass[b] * d->xipos[3 * b];
      sy += m->body_mass[b] * d->xipos[3 * b + 1];
    }
    xy[0] = sx / mass;
    xy[1] = sy / mass;
  }
}

void copy_extras(const Host& h, const mjModel* m, const mjData* d, float* out, bool zero_cfrc) {
  auto put = [&out](const mjtNum* src, int64_t n) {
    for (int64_t j = 0; j < n; j++) *out++ = src ? static_cast<float>(src[j]) : 0.0f;
  };
  for (int32_t code : h.extra_codes) {
    switch (code) {
      case EXTRA_CFRC_EXT: put(zero_cfrc ? nullptr : d->cfrc_ext, 6 * m->nbody); break;
      case EXTRA_CINERT: put(d->cinert, 10 * m->nbody); break;
      case EXTRA_CVEL: put(d->cvel, 6 * m->nbody); break;
      case EXTRA_QFRC_ACTUATOR: put(d->qfrc_actuator, m->nv); break;
    }
  }
}

// Point slot i's model at `params` (packed [scale, offset] per field in mask order):
// field = default * scale + offset in float64, as NativeBatch._models does. Fields outside the
// mask go back to their defaults (a slot may have held another family's task before).
void write_slot(Host& h, int64_t i, const float* params, int64_t np, int32_t mask) {
  while (static_cast<int64_t>(h.slots.size()) <= i) {
    h.slots.push_back(mj_copyModel(nullptr, h.model));
    h.slot_params.emplace_back();
    h.slot_mask.push_back(0);
    h.slot_mass.push_back(h.total_mass);
  }
  std::vector<float>& held = h.slot_params[i];
  if (h.slot_mask[i] == mask && static_cast<int64_t>(held.size()) == np &&
      std::memcmp(held.data(), params, np * sizeof(float)) == 0)
    return;  // tasks change between trials, not steps: this is the usual case
  mjModel* m = h.slots[i];
  const float* p = params;
  for (int code = 0; code < F_COUNT; code++) {
    int64_t size;
    double* dst = param_field(m, code, &size);
    const double* def = param_field(const_cast<mjModel*>(h.model), code, &size);
    if (mask & (1 << code)) {
      for (int64_t j = 0; j < size; j++)
        dst[j] = def[j] * static_cast<double>(p[j]) + static_cast<double>(p[size + j]);
      p += 2 * size;
    } else {
      std::memcpy(dst, def, size * sizeof(double));
    }
  }
  held.assign(params, params + np);
  h.slot_mask[i] = mask;
  h.slot_mass[i] = numpy_sum(m->body_mass, m->nbody);  // Gymnasium's mass_center divisor
}

// One env: the C kernel's loop body plus NativeBatch.step's row preparation and _pack.
// words_in / words_out: (ns + 2) doubles [state, track_x, track_y]; inputs: [ctrl (nu),
// reset noise (nq + nv), pending] (float32); floats: [qpos, qvel, track, track_delta, extras].
void run_env(const Host& h, const mjModel* m, double mass, mjData* d, int mode,
             const uint32_t* words_in, const float* inputs, uint32_t* words_out, float* floats,
             double* row) {
  const int ns = h.ns, nq = h.nq, nv = h.nv, nu = h.nu;
  double* out = reinterpret_cast<double*>(words_out);  // XLA buffers are 8-byte aligned
  const bool pending = mode == 1 || inputs[nu + nq + nv] > 0.5f;
  if (pending) {  // Gymnasium's reset state: time 0, qpos0 + noise, qvel0 + noise, no warm start
    std::memset(row, 0, (ns + 2) * sizeof(double));
    for (int j = 0; j < nq; j++) row[1 + j] = h.init_qpos[j] + static_cast<double>(inputs[nu + j]);
    for (int j = 0; j < nv; j++)
      row[1 + nq + j] = h.init_qvel[j] + static_cast<double>(inputs[nu + nq + j]);
    if (h.track == TRACK_ROOT_X && mode == 0) row[ns] = row[1];
  } else {
    std::memcpy(row, words_in, (ns + 2) * sizeof(double));
  }
  mj_setState(m, d, row, h.spec);
  if (pending) {
    mju_zero(d->ctrl, nu);  // Gymnasium's reset runs mj_forward on zeroed controls
    mj_forward(m, d);
    if (h.track != TRACK_ROOT_X) track_point(h, m, d, mass, row + ns);
  }
  if (mode == 1) {
    mj_getState(m, d, out, h.spec);  // keeps the warm start the forward pass produced
    if (h.track == TRACK_ROOT_X) {
      out[ns] = out[1];
      out[ns + 1] = 0.0;
    } else {
      out[ns] = row[ns];
      out[ns + 1] = row[ns + 1];
    }
  } else {
    for (int j = 0; j < nu; j++) d->ctrl[j] = static_cast<double>(inputs[j]);
    for (int k = 0; k < h.nstep; k++) mj_step(m, d);
    if (h.rne) mj_rnePostConstraint(m, d);  // cfrc_ext, as Gymnasium computes it
    mj_getState(m, d, out, h.spec);
    if (h.track == TRACK_ROOT_X) {
      out[ns] = out[1];
      out[ns + 1] = 0.0;
    } else {
      track_point(h, m, d, mass, out + ns);
    }
  }
  for (int j = 0; j < nq + nv; j++) floats[j] = static_cast<float>(out[1 + j]);
  floats[nq + nv] = static_cast<float>(out[ns]);
  floats[nq + nv + 1] = static_cast<float>(out[ns + 1]);
  for (int k = 0; k < 2; k++)  // float64 difference, then cast (zero after a reset)
    floats[nq + nv + 2 + k] = mode == 1 ? 0.0f : static_cast<float>(out[ns + k] - row[ns + k]);
  copy_extras(h, m, d, floats + nq + nv + 4, mode == 1);
}

// Shapes (B = product of the leading dims, 1 without vmap):
//   words (B, 2 (ns + 2)) u32; inputs (B, nu + nq + nv + 1) f32; params (B, P) f32 (P may be 0)
//   -> words_out like words; floats (B, nq + nv + 4 + extras) f32.
// Attributes: host (id from adaptrl_host_create), mode (0 step, 1 eager reset), param_mask.
ffi::Error Step(ffi::Buffer<ffi::U32> words, ffi::Buffer<ffi::F32> inputs,
                ffi::Buffer<ffi::F32> params, ffi::ResultBuffer<ffi::U32> words_out,
                ffi::ResultBuffer<ffi::F32> floats_out, int64_t host_id, int32_t mode,
                int32_t param_mask) {
  Host* hp;
  {
    std::lock_guard<std::mutex> lock(g_hosts_mu);
    if (host_id < 0 || host_id >= static_cast<int64_t>(g_hosts.size()))
      return ffi::Error::InvalidArgument("adaptrl: unknown native host id");
    hp = g_hosts[host_id];
  }
  Host& h = *hp;
  const auto in_dims = inputs.dimensions();
  const int64_t in_width = in_dims.size() == 0 ? 0 : in_dims.back();
  if (in_width != h.nu + h.nq + h.nv + 1)
    return ffi::Error::InvalidArgument("adaptrl: inputs width does not match the model");
  const int64_t batch = static_cast<int64_t>(inputs.element_count()) / in_width;
  const int64_t np = batch ? static_cast<int64_t>(params.element_count()) / batch : 0;
  const int64_t wwidth = 2 * (h.ns + 2);
  const int64_t fwidth = batch ? static_cast<int64_t>(floats_out->element_count()) / batch : 0;

  std::lock_guard<std::mutex> lock(h.mu);
  const bool per_env = param_mask != 0;
  if (per_env)
    for (int64_t i = 0; i < batch; i++) write_slot(h, i, params.typed_data() + i * np, np, param_mask);

  const uint32_t* w_in = words.typed_data();
  const float* in = inputs.typed_data();
  uint32_t* w_out = words_out->typed_data();
  float* fl = floats_out->typed_data();
  std::function<void(int, int64_t)> work = [&](int k, int64_t i) {
    const mjModel* m = per_env ? h.slots[i] : h.model;
    const double mass = per_env ? h.slot_mass[i] : h.total_mass;
    run_env(h, m, mass, h.datas[k], mode, w_in + i * wwidth, in + i * in_width,
            w_out + i * wwidth, fl + i * fwidth, h.rows[k].data());
  };
  h.pool->Run(batch, work);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(AdaptrlMujocoStep, Step,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::U32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::U32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("host")
                                  .Attr<int32_t>("mode")
                                  .Attr<int32_t>("param_mask"));

// Registers a robot's host (thread pool and scratch data included); returns its id for the
// `host` attribute. `model` is the address of the default mjModel, which must outlive the host.
extern "C" int64_t adaptrl_host_create(uint64_t model, int num_threads, int nstep, int rne,
                                       int track, int track_body, int nextras,
                                       const int32_t* extra_codes, const double* init_qpos,
                                       const double* init_qvel, double total_mass) {
  auto* h = new Host();
  h->model = reinterpret_cast<const mjModel*>(static_cast<uintptr_t>(model));
  const mjModel* m = h->model;
  h->nq = m->nq;
  h->nv = m->nv;
  h->nu = m->nu;
  h->spec = mjSTATE_TIME | mjSTATE_QPOS | mjSTATE_QVEL | mjSTATE_ACT | mjSTATE_WARMSTART;
  h->ns = mj_stateSize(m, h->spec);
  h->nstep = nstep;
  h->rne = rne;
  h->track = track;
  h->track_body = track_body;
  h->extra_codes.assign(extra_codes, extra_codes + nextras);
  h->init_qpos.assign(init_qpos, init_qpos + m->nq);
  h->init_qvel.assign(init_qvel, init_qvel + m->nv);
  h->total_mass = total_mass;
  const int n = num_threads < 1 ? 1 : num_threads;
  for (int k = 0; k < n; k++) {
    h->datas.push_back(mj_makeData(m));
    h->rows.emplace_back(h->ns + 2);
  }
  const char* spin = std::getenv("ADAPTRL_NATIVE_SPIN_US");
  h->pool = std::make_unique<Pool>(n, spin ? std::atoi(spin) : 0);
  std::lock_guard<std::mutex> lock(g_hosts_mu);
  g_hosts.push_back(h);
  return static_cast<int64_t>(g_hosts.size()) - 1;
}

// Copies field `code` (PARAM_FIELDS order) of slot `slot`'s model into `out` (for tests);
// returns the number of doubles, or -1 when the host has no such slot.
extern "C" int64_t adaptrl_host_slot_field(int64_t host_id, int64_t slot, int code, double* out) {
  Host* h;
  {
    std::lock_guard<std::mutex> lock(g_hosts_mu);
    if (host_id < 0 || host_id >= static_cast<int64_t>(g_hosts.size())) return -1;
    h = g_hosts[host_id];
  }
  std::lock_guard<std::mutex> lock(h->mu);
  if (slot < 0 || slot >= static_cast<int64_t>(h->slots.size())) return -1;
  int64_t size;
  const double* src = param_field(h->slots[slot], code, &size);
  std::memcpy(out, src, size * sizeof(double));
  return size;
}
