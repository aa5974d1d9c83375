// One handler per compiled op (src/scenario/ops.ts Op), in a table keyed by
// the op's name: each takes the live SimState, the op and its index, changes
// the state the way the kernel would, and returns what the reproducer should
// observe. A script the reproducer could not run throws ScriptError. Pure.

import { type Op, type OpName, mappingPages } from '../scenario/ops.ts';
import type { Buf, Helper, SimState } from './sim-state.ts';
import { type ExpectedOp, PROBE_MAX_PAGES, ScriptError } from './sim-types.ts';

/** The op of name K. */
type OpOf<K extends OpName> = Extract<Op, { op: K }>;
/** A handler: apply op `i` to the state, return its prediction. */
type OpHandler<K extends OpName> = (st: SimState, op: OpOf<K>, i: number) => ExpectedOp;

// ---------------------------------------------------------------------------
// The worker's perf mappings

/** map / aux_ring: a new fd and its first mapping (an aux_ring is an ordinary ring buffer of the lockstep_aux PMU's event). */
function mapOp(st: SimState, op: OpOf<'map' | 'aux_ring'>, i: number): ExpectedOp {
  if (st.bufs.has(op.buf)) throw new ScriptError(i, `${op.op} ${op.buf}: a buffer of that name is still open`);
  const b = st.newBuf(mappingPages(op.data_pages));
  st.bufs.set(op.buf, b);
  return st.firstMapping(b);
}

/** The worker's open fd of that name, or ScriptError naming the op. */
function openBuf(st: SimState, i: number, what: string, name: string): Buf {
  const b = st.bufs.get(name);
  if (b === undefined) throw new ScriptError(i, `${what} ${name}: no such open buffer`);
  return b;
}

const auxMap: OpHandler<'aux_map'> = (st, op, i) => {
  const b = openBuf(st, i, 'aux_map', op.buf);
  // no ring buffer to put the AUX area above (its mmap failed)
  if (b.rb.mapCount === 0) return st.refused('EINVAL');
  if (b.auxCount > 0) {
    // Already mapped: the same size or EINVAL; V0..V3 charge nothing, V4 charges the pages to U again.
    if (op.pages !== b.auxNr) return st.refused('EINVAL');
    if (st.cfg.v4) st.U += op.pages;
    b.auxCount++;
    return st.ok();
  }
  const r = st.charge(op.pages);
  if (r.ok) {
    b.auxCount = 1;
    b.auxNr = op.pages;
    b.auxLocked = r.check!.extra;
  }
  return r;
};

const auxUnmap: OpHandler<'aux_unmap'> = (st, op, i) => {
  const b = openBuf(st, i, 'aux_unmap', op.buf);
  // its aux_map failed: nothing to unmap (the reproducer says EINVAL)
  if (b.auxCount === 0) return st.refused('EINVAL');
  if (b.auxCount === 1) st.releaseAux(b);
  else b.auxCount--;
  return st.ok();
};

const remap: OpHandler<'remap'> = (st, op, i) => {
  const b = openBuf(st, i, 'remap', op.buf);
  // The earlier mmap failed: this mmap creates the ring buffer, with the full check.
  if (b.rb.mapCount === 0) return st.firstMapping(b);
  // Mapping an existing ring buffer: V0..V3 charge nothing; V4 charges ue to U,
  // unchecked, and never gives it back.
  if (st.cfg.v4) st.U += b.ue;
  b.rb.mapCount++;
  b.own++;
  return st.ok();
};

const unmapPart: OpHandler<'unmap_part'> = (st, op, i) => {
  if (!st.bufs.has(op.buf)) throw new ScriptError(i, `unmap_part ${op.buf}: no such open buffer`);
  // Refused since v6.17; before, the split succeeds and the charges wait for the rest.
  return st.cfg.partialEinval ? st.refused('EINVAL') : st.ok();
};

const mapOutput: OpHandler<'map_output'> = (st, op, i) => {
  if (st.bufs.has(op.buf)) throw new ScriptError(i, `map_output ${op.buf}: a buffer of that name is still open`);
  const t = st.bufs.get(op.to);
  if (t === undefined) throw new ScriptError(i, `map_output ${op.buf} ${op.to}: no such open buffer`);
  if (st.cfg.outputEbusy) return st.refused('EBUSY');
  const b = st.newBuf(t.ue);
  st.bufs.set(op.buf, b);
  // nothing to share: the mmap creates a ring buffer of its own
  if (t.rb.mapCount === 0) return st.firstMapping(b);
  // Shares the target's ring buffer: like a re-mmap of it (V4: charged again, never given back).
  b.rb = t.rb;
  b.own = 1;
  t.rb.mapCount++;
  if (st.cfg.v4) st.U += b.ue;
  return st.ok();
};

const unmap: OpHandler<'unmap'> = (st, op, i) => {
  if (op.buf === '*') {
    for (const b of st.bufs.values()) st.releaseBuf(b);
    st.bufs.clear();
  } else {
    const b = openBuf(st, i, 'unmap', op.buf);
    st.releaseBuf(b);
    st.bufs.delete(op.buf);
  }
  return st.ok();
};

const probe: OpHandler<'probe'> = (st) => {
  const L = st.userLockLimit();
  const limited = st.paranoid > -1 && !st.cap;
  let ok = true;
  let headroom: number;
  if (limited && st.P > st.R) {
    // Even a map with extra = 0 is refused once P alone exceeds the limit.
    headroom = 0;
    ok = false;
  } else {
    // U below -1 (V1's AUX unmap) reads as huge unsigned: the first map spills.
    const room = st.U < -1 ? 0 : L - st.U;
    headroom = room > 0 ? room : 0;
    if (headroom >= PROBE_MAX_PAGES) {
      headroom = PROBE_MAX_PAGES; // stops without spilling
    } else {
      st.cfg.split(st.U + headroom, 1, L, st.sp); // the spilling map
      if (limited && st.P + st.sp.extra > st.R) ok = false;
    }
  }
  // Everything the probe mapped is unmapped again: U and P are back where they were.
  return { ok, errno: ok ? '' : 'EPERM', pinned: st.P, user: st.U, headroom };
};

// ---------------------------------------------------------------------------
// io_uring in the worker

const uring: OpHandler<'uring'> = (st, op) => {
  // io_uring's own check: user->locked_vm + pages against the worker's RLIMIT_MEMLOCK,
  // skipped (and nothing charged to the user) with CAP_IPC_LOCK; since v5.9 mm->pinned_vm
  // grows either way (uringChargesPinned), before not at all.
  // io_uring_setup first: its ring pages (ioUringExtraPages) stay charged with the ring,
  // which the worker keeps open until it exits, registered or not.
  const cap = st.cap;
  if (!cap) {
    st.chargeLocked(st.cfg.ioUringExtra);
    st.uringUser += st.cfg.ioUringExtra;
  }
  if (!cap && st.lockedVm() + op.pages > st.R) return st.refused('ENOMEM');
  if (!cap) {
    st.chargeLocked(op.pages);
    st.uringUser += op.pages;
  }
  if (st.cfg.uringPins) {
    // v5.9+: the pages count in the registering mm's pinned_vm (VmPin) too
    st.P += op.pages;
    st.uringPinned += op.pages;
  }
  return st.ok();
};

// ---------------------------------------------------------------------------
// Helpers of the uid

const handoff: OpHandler<'handoff'> = (st, op, i) => {
  if (st.bufs.has(op.buf)) throw new ScriptError(i, `handoff ${op.buf}: a buffer of that name is still open`);
  // The helper (CAP_IPC_LOCK, never refused) creates the ring buffer: the usual split.
  const L = st.userLockLimit();
  const rb = st.newBuf(mappingPages(op.data_pages));
  const sp = st.sp;
  st.cfg.split(st.U, rb.ue, L, sp);
  st.U += sp.userCharge;
  rb.userCharge = sp.userCharge;
  rb.extra = sp.extra;
  rb.mapCount = 1;
  st.helpers.push({ alive: true, rings: [rb], locked: 0 });
  // The worker maps the received fd: an extra mapping of an existing ring buffer.
  const w: Buf = { ue: rb.ue, mapCount: 0, userCharge: 0, extra: 0, rb, own: 1, auxCount: 0, auxNr: 0, auxLocked: 0 };
  rb.mapCount++;
  if (st.cfg.v4) st.U += rb.ue;
  st.bufs.set(op.buf, w);
  return { ok: true, errno: '', pinned: st.P, user: st.U, helperPinned: sp.extra };
};

const killHelper: OpHandler<'kill_helper'> = (st, op, i) => {
  const which = op.helper === '*' ? st.helpers.filter((h) => h.alive) : [st.helpers[op.helper]];
  const h0 = which[0];
  if (op.helper !== '*' && (h0 === undefined || !h0.alive)) {
    throw new ScriptError(i, `kill_helper ${op.helper}: no such live helper`);
  }
  for (const h of which) st.killHelper(h!);
  return st.ok();
};

/** ballast via perf: a helper with CAP_IPC_LOCK (never refused) maps fresh buffers in order. */
function ballastPerf(st: SimState, buffers: readonly number[]): ExpectedOp {
  const L = st.userLockLimit();
  const sp = st.sp;
  let hp = 0;
  const h: Helper = { alive: true, rings: [], locked: 0 };
  for (let k = 0; k < buffers.length; k++) {
    st.cfg.split(st.U, mappingPages(buffers[k]!), L, sp);
    st.U += sp.userCharge;
    hp += sp.extra;
    // what the ring remembers, for the helper's death (mapped once: by the helper)
    h.rings.push({ ue: mappingPages(buffers[k]!), mapCount: 1, userCharge: sp.userCharge, extra: sp.extra, own: 1 } as Buf);
  }
  st.helpers.push(h);
  return { ok: true, errno: '', pinned: st.P, user: st.U, helperPinned: hp };
}

/**
 * ballast via bpf: before 5.11 the maps' pages go to user->locked_vm (no capability exemption), map by
 * map (<= 256 pages each, as the reproducer creates them), each checked against the
 * helper's RLIMIT_MEMLOCK (bpf_charge_memlock: EPERM when over).
 */
function ballastBpf(st: SimState, pages: number): ExpectedOp {
  let charged = 0;
  let ok = true;
  for (let left = pages; st.cfg.bpfCharges && left > 0; ) {
    const p = left > 256 ? 256 : left;
    if (st.lockedVm() + p > st.cfg.helperR) { ok = false; break; }
    st.chargeLocked(p);
    charged += p;
    left -= p;
  }
  st.helpers.push({ alive: true, rings: [], locked: charged });
  return { ok, errno: ok ? '' : 'EPERM', pinned: st.P, user: st.U };
}

/** ballast via memfd_secret: 6.1.191+ / 6.12.113+: each touched page to user->locked_vm, no CAP_IPC_LOCK exemption. */
function ballastSecretmem(st: SimState, pages: number): ExpectedOp {
  const charges = st.cfg.secretCharges;
  if (charges) st.chargeLocked(pages);
  st.helpers.push({ alive: true, rings: [], locked: charges ? pages : 0 });
  return st.ok();
}

/**
 * ballast via io_uring: io_uring_setup charges its ring pages; the registration is checked against the
 * helper's RLIMIT_MEMLOCK (io_account_mem: ENOMEM when user->locked_vm + pages is over).
 */
function ballastUring(st: SimState, pages: number): ExpectedOp {
  const extra = st.cfg.ioUringExtra;
  st.chargeLocked(extra);
  const fits = pages === 0 || st.lockedVm() + pages <= st.cfg.helperR;
  if (fits) st.chargeLocked(pages);
  st.helpers.push({ alive: true, rings: [], locked: extra + (fits ? pages : 0) });
  return { ok: fits, errno: fits ? '' : 'ENOMEM', pinned: st.P, user: st.U };
}

const ballast: OpHandler<'ballast'> = (st, op) => {
  if (op.via === 'perf') return ballastPerf(st, op.buffers);
  if (op.via === 'bpf') return ballastBpf(st, op.pages);
  if (op.via === 'memfd_secret') return ballastSecretmem(st, op.pages);
  return ballastUring(st, op.pages);
};

// ---------------------------------------------------------------------------
// The worker process and the machine

const exit: OpHandler<'exit'> = (st, op) => {
  // The dying worker's mappings go away as on munmap (V4's leaked remap
  // charges stay: U belongs to the uid, which a helper keeps alive, or
  // root, whose record never goes; see `last` below); the
  // new worker starts with the scenario's RLIMIT_MEMLOCK and no pins.
  for (const b of st.bufs.values()) st.releaseBuf(b);
  st.bufs.clear();
  if (st.cfg.shared) st.U -= st.uringUser;
  else st.LV -= st.uringUser;
  st.uringUser = 0;
  st.uringPinned = 0;
  // A fresh process pins nothing (a handed-off ring's last munmap may have charged the old mm's pinned_vm).
  st.P = 0;
  // `last`: the uid's last process is gone and its user_struct (both per-user counters)
  // freed (free_uid, kernel/user.c); the new worker's fork allocates a fresh one. uid 0's
  // record is the static root_user: it keeps every charge, V4's leaks included, until reboot.
  if (op.last === true && st.s.root !== true) {
    st.U = 0;
    st.LV = 0;
  }
  st.R = st.rlimitPages(st.s.rlimit_kb);
  st.cap = st.s.cap_ipc_lock;
  return st.ok();
};

const cpu: OpHandler<'cpu'> = (st, op) => {
  const n = st.s.cpus;
  if (op.cpu < n) {
    if (op.online) st.offline.delete(op.cpu);
    else st.offline.add(op.cpu);
  } else if (op.online) st.extraOnline.add(op.cpu);
  else st.extraOnline.delete(op.cpu);
  st.cpus = n - st.offline.size + st.extraOnline.size;
  return st.ok();
};

/** Every op's handler, by op name: simulate() dispatches through it. */
export const OP_HANDLERS: { readonly [K in OpName]: OpHandler<K> } = {
  map: mapOp,
  aux_ring: mapOp,
  aux_map: auxMap,
  aux_unmap: auxUnmap,
  handoff,
  kill_helper: killHelper,
  cap_ipc_lock: (st, op) => {
    st.cap = op.value;
    return st.ok();
  },
  remap,
  unmap_part: unmapPart,
  map_output: mapOutput,
  uring,
  unmap,
  probe,
  ballast,
  exit,
  sysctl: (st, op) => {
    if (op.name === 'perf_event_mlock_kb') st.mlockKb = op.value;
    else st.paranoid = op.value;
    return st.ok();
  },
  rlimit: (st, op) => {
    st.R = st.rlimitPages(op.memlock_kb);
    return st.ok();
  },
  cpu,
  hang: (st) => st.ok(),
  sysrq: (st) => st.ok(),
};
