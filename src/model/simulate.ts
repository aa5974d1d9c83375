// The simulator: runs a compiled op script against one accounting logic and
// predicts, per op, what the native reproducer (harness/PROTOCOL.md) should
// observe. Pure: no I/O, no clocks, no randomness.

import { type CompiledScenario, mappingPages, userLockLimit } from '../scenario/ops.ts';
import { type UpstreamChange, modelFlagsFor, readKernelVersion, UPSTREAM_CHANGES } from '../kernel-facts/index.ts';
import { AUX_UNMAP, auxGiveBack, DEFAULT_PAGE_KB, HELPER_RLIMIT_MEMLOCK_KB, type Logic, type Split, SPLITS, checkPageKb, rlimitPages } from './accounting.ts';

/** What the kernel's check in perf_mmap() computed for a new ring buffer (pages). */
export interface MapCheck {
  /** user_locked as the kernel computed it (V3/V4: clamped to L first). */
  userLocked: number;
  /** pages to be charged to mm->pinned_vm */
  extra: number;
  /** mm->pinned_vm before the call */
  pinnedBefore: number;
  /** locked = pinnedBefore + extra, compared against lockLimit */
  locked: number;
  /** RLIMIT_MEMLOCK >> PAGE_SHIFT (2^52 - 1 when unlimited) */
  lockLimit: number;
  /** (perf_event_mlock_kb >> (PAGE_SHIFT - 10)) * num_online_cpus() at the time of the call */
  userLockLimit: number;
}

/** The errors the model predicts: EPERM (perf_mmap), ENOMEM (io_uring), EINVAL (unmap_part), EBUSY (map_output). */
export type ExpectedErrno = '' | 'EPERM' | 'ENOMEM' | 'EINVAL' | 'EBUSY';

export interface ExpectedOp {
  ok: boolean;
  errno: ExpectedErrno;
  /** the worker's mm->pinned_vm (VmPin kB / page kB) in native pages after the op */
  pinned: number;
  /** perf's per-user counter (U) in pages after the op */
  user: number;
  /** probe: pages that fit under the allowance before one spills, L - U (capped at PROBE_MAX_PAGES) */
  headroom?: number;
  /** perf ballast and handoff: the helper's pinned pages (not predicted for io_uring ballast) */
  helperPinned?: number;
  /** map (and a remap that is in fact the first mapping): the kernel's check */
  check?: MapCheck;
}

export interface SimulateOptions {
  /**
   * Pages io_uring charges to user->locked_vm per `ballast io_uring` op besides
   * the registered buffers themselves (its SQ/CQ rings, on some kernels). Only
   * matters for counter 'shared'. Default 0. Set (to 0) by the version from
   * 7.2.11 and v7.3 ("io_uring: do not charge the SQ/CQ rings to
   * RLIMIT_MEMLOCK"); elsewhere left unset and src/diff's calibrate() measures it.
   */
  ioUringExtraPages?: number;
  /**
   * Whether io_uring's buffer registration (the worker's `uring` op) charges
   * the registering process's mm->pinned_vm, besides user->locked_vm:
   * since v5.9 ("io_uring: report pinned memory usage", 309758254ea6), with or
   * without CAP_IPC_LOCK; before, user->locked_vm only (measured on real
   * 5.3.1, 5.4.0, 5.5-rc5, 5.6.4). Default true.
   */
  uringChargesPinned?: boolean;
  /**
   * Whether `ballast bpf` charges user->locked_vm: true before v5.11 (which
   * moved BPF to memcg accounting), false since. A property of the kernel, not
   * of the logic: see simOptionsForVersion. Default false (this host's 6.x).
   * Only matters for counter 'shared'.
   */
  bpfChargesUser?: boolean;
  /**
   * The kernel's PAGE_SIZE in kB (4, 16 or 64; default 4). Every quantity of
   * the model is in these native pages: the header page, user_extra,
   * RLIMIT_MEMLOCK >> PAGE_SHIFT, VmPin. The guest reports it in `hello`.
   */
  pageKb?: number;
  /**
   * munmap of part of a perf mapping fails with EINVAL ("perf/core: Prevent
   * VMA split of buffer mappings": v6.17; stables 6.16.1, 6.12.42, 6.1.148).
   * Default false.
   */
  partialMunmapEinval?: boolean;
  /**
   * mmap of an event whose output was redirected (PERF_EVENT_IOC_SET_OUTPUT)
   * fails with EBUSY: v6.19 and 6.18.8. Default false (it shares the target's
   * ring buffer; V4 charges the per-user counter again, as for a re-mmap).
   */
  mapOutputEbusy?: boolean;
  /**
   * memfd_secret pages are charged to user->locked_vm ("mm/secretmem:
   * properly account locked pages": v7.2, stables 6.1.191, 6.12.113). Default false.
   */
  secretmemChargesUser?: boolean;
  /**
   * The helpers' RLIMIT_MEMLOCK in kB (null = unlimited) that io_uring and
   * BPF ballasts are checked against. Default HELPER_RLIMIT_MEMLOCK_KB (8192),
   * what the reproducer sets in every runtime; other values only for
   * what-if models (e.g. the incident's 128 MiB of other root charges).
   */
  helperRlimitKb?: number | null;
}

/**
 * The simulator options a kernel's version implies, read from the facts
 * table (src/kernel-facts UPSTREAM_CHANGES; `table` lets tests add a made-up
 * row): each row that switches a flag gives it its value where the kernel
 * carries the change (its mainline release or later, or its stable line's
 * release or later) and the opposite where not. A stable line the row does
 * not name is taken to lack the change. Today's rows: bpfChargesUser (until
 * v5.11), partialMunmapEinval (v6.17; 6.16.1, 6.12.42, 6.1.148),
 * mapOutputEbusy (v6.19; 6.18.8), secretmemChargesUser (v7.2; 6.12.113,
 * 6.1.191), uringChargesPinned (v5.9, 309758254ea6), and io_uring's rings
 * uncharged (7.2.11, v7.3 inferred): ioUringExtraPages 0 there, so
 * src/diff's calibrate() keeps its hands off. `pageKb` is the kernel's page
 * size when known (hello), default 4. A string with no version in it gives
 * the defaults; one beyond any real kernel throws KernelVersionError (a
 * RangeError).
 */
export function simOptionsForVersion(version: string, pageKb?: number, table: readonly UpstreamChange[] = UPSTREAM_CHANGES): SimulateOptions {
  const out: SimulateOptions = {};
  if (pageKb !== undefined) out.pageKb = checkPageKb(pageKb);
  const v = readKernelVersion(version);
  if (v === null) return out;
  const { uringRingsUncharged, ...flags } = modelFlagsFor(v, table);
  Object.assign(out, flags);
  if (uringRingsUncharged === true) out.ioUringExtraPages = 0;
  return out;
}

/**
 * The reproducer's probe stops without spilling once it holds this many
 * pages (2^18 = 1 GiB of 4 KiB pages: a perf_event_mlock_kb of 512 MiB on 2
 * CPUs, or 256 CPUs at 4 MiB each). It holds ring buffers of 1 + 2^k pages
 * (harness/PROTOCOL.md), so the headroom is exact to the page below the cap.
 */
export const PROBE_MAX_PAGES = 2 ** 18;

/** Thrown for a script the reproducer could not run (map of an open name, unmap of an unknown one, ...). */
export class ScriptError extends Error {
  constructor(
    readonly i: number,
    message: string,
  ) {
    super(`op ${i}: ${message}`);
    this.name = 'ScriptError';
  }
}

/**
 * One perf event fd of the worker. A `map` owns a ring buffer (rb === itself)
 * and remembers its charges; a `map_output` event shares another's (rb).
 */
interface Buf {
  /** pages per mapping (data pages + 1) */
  ue: number;
  /** ring buffer owners: live mappings of the ring buffer through any fd; 0 = never mapped */
  mapCount: number;
  /** charges remembered by the ring buffer, given back when its last mapping goes */
  userCharge: number;
  extra: number;
  /** the ring buffer this fd's mappings belong to */
  rb: Buf;
  /** mappings made through this fd */
  own: number;
  /** AUX area (aux_ring buffers only): live mappings, pages (aux_nr_pages), pages charged to P (aux_mmap_locked) */
  auxCount: number;
  auxNr: number;
  auxLocked: number;
}

/**
 * A helper process of the uid (ballast or handoff), in start order: what its
 * death gives back. Perf rings it maps are ring buffers of its own (given back
 * when their last mapping goes: the helper's, or a handed-off fd's in the
 * worker); other chargers' pages go back to user->locked_vm.
 */
interface Helper {
  alive: boolean;
  rings: Buf[];
  /** pages charged through user->locked_vm by io_uring / BPF / memfd_secret */
  locked: number;
}

/**
 * Predict every op of `s` under `logic`. One entry per op, same order.
 *
 * State: U (per uid: worker and helpers share it), the worker's P, each
 * helper's P, the worker's buffers with their remembered charges, and the
 * live perf_event_mlock_kb, perf_event_paranoid, online CPU set,
 * RLIMIT_MEMLOCK and CAP_IPC_LOCK. L is recomputed on every map.
 */
export function simulate(s: CompiledScenario, logic: Logic, opts?: SimulateOptions): ExpectedOp[] {
  const split = SPLITS[logic.accounting];
  if (split === undefined) throw new RangeError(`unknown accounting ${String(logic.accounting)}`);
  if (logic.counter !== 'shared' && logic.counter !== 'perf') throw new RangeError(`unknown counter ${String(logic.counter)}`);
  const v4 = logic.accounting === 'V4';
  const auxRule = AUX_UNMAP[logic.accounting];
  const shared = logic.counter === 'shared';
  const ioUringExtra = opts?.ioUringExtraPages ?? 0;
  const bpfCharges = opts?.bpfChargesUser ?? false;
  const secretCharges = opts?.secretmemChargesUser ?? false;
  const partialEinval = opts?.partialMunmapEinval ?? false;
  const outputEbusy = opts?.mapOutputEbusy ?? false;
  const uringPins = opts?.uringChargesPinned ?? true;
  if (!Number.isInteger(ioUringExtra) || ioUringExtra < 0) throw new RangeError(`ioUringExtraPages must be a whole number >= 0, got ${ioUringExtra}`);
  const pageKb = checkPageKb(opts?.pageKb ?? DEFAULT_PAGE_KB);

  let cap = s.cap_ipc_lock;
  const helpers: Helper[] = [];
  let mlockKb = s.mlock_kb;
  let paranoid = s.paranoid;
  let R = rlimitPages(s.rlimit_kb, pageKb);
  /** the helpers' RLIMIT_MEMLOCK in pages: what io_uring and BPF (before 5.11) check their charges against */
  const helperR = rlimitPages(opts?.helperRlimitKb === undefined ? HELPER_RLIMIT_MEMLOCK_KB : opts.helperRlimitKb, pageKb);
  // Online CPUs: 0..cpus-1 at start (the reproducer checks the count); `cpu` ops toggle ids.
  const offline = new Set<number>();
  const extraOnline = new Set<number>();
  let cpus = s.cpus;

  let U = 0;
  let P = 0;
  // user->locked_vm as other chargers (io_uring, memfd_secret, BPF) see it: U itself
  // on a shared counter; on a perf counter only what those chargers put there.
  let LV = 0;
  const chargeLocked = (pages: number): void => {
    if (shared) U += pages;
    else LV += pages;
  };
  // The worker's own io_uring registrations: given back when it exits.
  let uringUser = 0;
  let uringPinned = 0;
  const bufs = new Map<string, Buf>(); // insertion order == map order
  const pool: Buf[] = [];
  const sp: Split = { userLocked: 0, extra: 0, userCharge: 0 };

  const ops = s.ops;
  const n = ops.length;
  const out: ExpectedOp[] = new Array(n);

  /** The last mapping of b's AUX area goes: give back by the logic's AUX unmap rule. */
  const releaseAux = (b: Buf): void => {
    if (b.auxCount === 0) return;
    b.auxCount = 0;
    const g = auxGiveBack(auxRule, b.auxNr, b.auxLocked);
    U -= g.user;
    P -= g.pinned;
  };
  /** The helper's ring `rb` loses its helper mapping; the last mapping gives the charges back (to U; P of the mm that unmaps last). */
  const releaseHelperRing = (rb: Buf): void => {
    rb.mapCount--;
    if (rb.mapCount === 0) U -= rb.userCharge;
  };
  const killHelper = (h: Helper): void => {
    h.alive = false;
    for (const rb of h.rings) releaseHelperRing(rb);
    chargeLocked(-h.locked);
  };
  const releaseBuf = (b: Buf): void => {
    releaseAux(b);
    const rb = b.rb;
    if (b.own > 0) {
      rb.mapCount -= b.own;
      b.own = 0;
      if (rb.mapCount === 0) {
        U -= rb.userCharge;
        P -= rb.extra;
      }
    }
    // an owner whose ring buffer another fd still maps stays referenced: not reused
    if (rb === b && b.mapCount === 0) pool.push(b);
  };
  const newBuf = (ue: number): Buf => {
    const b = pool.pop() ?? ({ ue: 0, mapCount: 0, userCharge: 0, extra: 0, own: 0 } as unknown as Buf);
    b.ue = ue;
    b.mapCount = 0;
    b.userCharge = 0;
    b.extra = 0;
    b.rb = b;
    b.own = 0;
    b.auxCount = 0;
    b.auxNr = 0;
    b.auxLocked = 0;
    return b;
  };

  for (let i = 0; i < n; i++) {
    const op = ops[i]!;
    switch (op.op) {
      case 'map':
      case 'aux_ring': {
        // an aux_ring is an ordinary ring buffer (of the lockstep_aux PMU's event): charged as a map
        if (bufs.has(op.buf)) throw new ScriptError(i, `${op.op} ${op.buf}: a buffer of that name is still open`);
        const b = newBuf(mappingPages(op.data_pages));
        bufs.set(op.buf, b);
        out[i] = firstMapping(b);
        break;
      }
      case 'aux_map': {
        const b = bufs.get(op.buf);
        if (b === undefined) throw new ScriptError(i, `aux_map ${op.buf}: no such open buffer`);
        if (b.rb.mapCount === 0) {
          // no ring buffer to put the AUX area above (its mmap failed)
          out[i] = { ok: false, errno: 'EINVAL', pinned: P, user: U };
        } else if (b.auxCount > 0) {
          // Already mapped: the same size or EINVAL; V0..V3 charge nothing, V4 charges the pages to U again.
          if (op.pages !== b.auxNr) out[i] = { ok: false, errno: 'EINVAL', pinned: P, user: U };
          else {
            if (v4) U += op.pages;
            b.auxCount++;
            out[i] = { ok: true, errno: '', pinned: P, user: U };
          }
        } else {
          const r = charge(op.pages);
          if (r.ok) {
            b.auxCount = 1;
            b.auxNr = op.pages;
            b.auxLocked = r.check!.extra;
          }
          out[i] = r;
        }
        break;
      }
      case 'aux_unmap': {
        const b = bufs.get(op.buf);
        if (b === undefined) throw new ScriptError(i, `aux_unmap ${op.buf}: no such open buffer`);
        if (b.auxCount === 0) {
          // its aux_map failed: nothing to unmap (the reproducer says EINVAL)
          out[i] = { ok: false, errno: 'EINVAL', pinned: P, user: U };
          break;
        }
        if (b.auxCount === 1) releaseAux(b);
        else b.auxCount--;
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'handoff': {
        if (bufs.has(op.buf)) throw new ScriptError(i, `handoff ${op.buf}: a buffer of that name is still open`);
        // The helper (CAP_IPC_LOCK, never refused) creates the ring buffer: the usual split.
        const L = userLockLimit(mlockKb, cpus, pageKb);
        const rb = newBuf(mappingPages(op.data_pages));
        split(U, rb.ue, L, sp);
        U += sp.userCharge;
        rb.userCharge = sp.userCharge;
        rb.extra = sp.extra;
        rb.mapCount = 1;
        helpers.push({ alive: true, rings: [rb], locked: 0 });
        // The worker maps the received fd: an extra mapping of an existing ring buffer.
        const w: Buf = { ue: rb.ue, mapCount: 0, userCharge: 0, extra: 0, rb, own: 1, auxCount: 0, auxNr: 0, auxLocked: 0 };
        rb.mapCount++;
        if (v4) U += rb.ue;
        bufs.set(op.buf, w);
        out[i] = { ok: true, errno: '', pinned: P, user: U, helperPinned: sp.extra };
        break;
      }
      case 'kill_helper': {
        const which = op.helper === '*' ? helpers.filter((h) => h.alive) : [helpers[op.helper]];
        const h0 = which[0];
        if (op.helper !== '*' && (h0 === undefined || !h0.alive)) {
          throw new ScriptError(i, `kill_helper ${op.helper}: no such live helper`);
        }
        for (const h of which) killHelper(h!);
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'cap_ipc_lock': {
        cap = op.value;
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'remap': {
        const b = bufs.get(op.buf);
        if (b === undefined) throw new ScriptError(i, `remap ${op.buf}: no such open buffer`);
        if (b.rb.mapCount === 0) {
          // The earlier mmap failed: this mmap creates the ring buffer, with the full check.
          out[i] = firstMapping(b);
        } else {
          // Mapping an existing ring buffer: V0..V3 charge nothing; V4 charges ue to U,
          // unchecked, and never gives it back.
          if (v4) U += b.ue;
          b.rb.mapCount++;
          b.own++;
          out[i] = { ok: true, errno: '', pinned: P, user: U };
        }
        break;
      }
      case 'unmap_part': {
        if (!bufs.has(op.buf)) throw new ScriptError(i, `unmap_part ${op.buf}: no such open buffer`);
        // Refused since v6.17; before, the split succeeds and the charges wait for the rest.
        out[i] = partialEinval ? { ok: false, errno: 'EINVAL', pinned: P, user: U } : { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'map_output': {
        if (bufs.has(op.buf)) throw new ScriptError(i, `map_output ${op.buf}: a buffer of that name is still open`);
        const t = bufs.get(op.to);
        if (t === undefined) throw new ScriptError(i, `map_output ${op.buf} ${op.to}: no such open buffer`);
        if (outputEbusy) {
          out[i] = { ok: false, errno: 'EBUSY', pinned: P, user: U };
          break;
        }
        const b = newBuf(t.ue);
        bufs.set(op.buf, b);
        if (t.rb.mapCount === 0) {
          // nothing to share: the mmap creates a ring buffer of its own
          out[i] = firstMapping(b);
          break;
        }
        // Shares the target's ring buffer: like a re-mmap of it (V4: charged again, never given back).
        b.rb = t.rb;
        b.own = 1;
        t.rb.mapCount++;
        if (v4) U += b.ue;
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'uring': {
        // io_uring's own check: user->locked_vm + pages against the worker's RLIMIT_MEMLOCK,
        // skipped (and nothing charged to the user) with CAP_IPC_LOCK; since v5.9 mm->pinned_vm
        // grows either way (uringChargesPinned), before not at all.
        // io_uring_setup first: its ring pages (ioUringExtraPages) stay charged with the ring,
        // which the worker keeps open until it exits, registered or not.
        if (!cap) {
          chargeLocked(ioUringExtra);
          uringUser += ioUringExtra;
        }
        const locked = shared ? U : LV;
        if (!cap && locked + op.pages > R) {
          out[i] = { ok: false, errno: 'ENOMEM', pinned: P, user: U };
          break;
        }
        if (!cap) {
          chargeLocked(op.pages);
          uringUser += op.pages;
        }
        if (uringPins) {
          // v5.9+: the pages count in the registering mm's pinned_vm (VmPin) too
          P += op.pages;
          uringPinned += op.pages;
        }
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'unmap': {
        if (op.buf === '*') {
          for (const b of bufs.values()) releaseBuf(b);
          bufs.clear();
        } else {
          const b = bufs.get(op.buf);
          if (b === undefined) throw new ScriptError(i, `unmap ${op.buf}: no such open buffer`);
          releaseBuf(b);
          bufs.delete(op.buf);
        }
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'probe': {
        const L = userLockLimit(mlockKb, cpus, pageKb);
        const limited = paranoid > -1 && !cap;
        let ok = true;
        let headroom: number;
        if (limited && P > R) {
          // Even a map with extra = 0 is refused once P alone exceeds the limit.
          headroom = 0;
          ok = false;
        } else {
          // U below -1 (V1's AUX unmap) reads as huge unsigned: the first map spills.
          const room = U < -1 ? 0 : L - U;
          headroom = room > 0 ? room : 0;
          if (headroom >= PROBE_MAX_PAGES) {
            headroom = PROBE_MAX_PAGES; // stops without spilling
          } else {
            split(U + headroom, 1, L, sp); // the spilling map
            if (limited && P + sp.extra > R) ok = false;
          }
        }
        // Everything the probe mapped is unmapped again: U and P are back where they were.
        out[i] = { ok, errno: ok ? '' : 'EPERM', pinned: P, user: U, headroom };
        break;
      }
      case 'ballast': {
        if (op.via === 'perf') {
          // A helper with CAP_IPC_LOCK (never refused) maps fresh buffers in order.
          const L = userLockLimit(mlockKb, cpus, pageKb);
          let hp = 0;
          const bl = op.buffers;
          const h: Helper = { alive: true, rings: [], locked: 0 };
          for (let k = 0; k < bl.length; k++) {
            split(U, mappingPages(bl[k]!), L, sp);
            U += sp.userCharge;
            hp += sp.extra;
            // what the ring remembers, for the helper's death (mapped once: by the helper)
            h.rings.push({ ue: mappingPages(bl[k]!), mapCount: 1, userCharge: sp.userCharge, extra: sp.extra, own: 1 } as Buf);
          }
          helpers.push(h);
          out[i] = { ok: true, errno: '', pinned: P, user: U, helperPinned: hp };
        } else if (op.via === 'bpf') {
          // Before 5.11 the maps' pages go to user->locked_vm (no capability exemption), map by
          // map (<= 256 pages each, as the reproducer creates them), each checked against the
          // helper's RLIMIT_MEMLOCK (bpf_charge_memlock: EPERM when over).
          let charged = 0;
          let ok = true;
          for (let left = op.pages; bpfCharges && left > 0; ) {
            const p = left > 256 ? 256 : left;
            if ((shared ? U : LV) + p > helperR) { ok = false; break; }
            chargeLocked(p);
            charged += p;
            left -= p;
          }
          helpers.push({ alive: true, rings: [], locked: charged });
          out[i] = { ok, errno: ok ? '' : 'EPERM', pinned: P, user: U };
        } else if (op.via === 'memfd_secret') {
          // 6.1.191+ / 6.12.113+: each touched page to user->locked_vm, no CAP_IPC_LOCK exemption.
          if (secretCharges) chargeLocked(op.pages);
          helpers.push({ alive: true, rings: [], locked: secretCharges ? op.pages : 0 });
          out[i] = { ok: true, errno: '', pinned: P, user: U };
        } else {
          // io_uring_setup charges its ring pages; the registration is checked against the
          // helper's RLIMIT_MEMLOCK (io_account_mem: ENOMEM when user->locked_vm + pages is over).
          chargeLocked(ioUringExtra);
          const fits = op.pages === 0 || (shared ? U : LV) + op.pages <= helperR;
          if (fits) chargeLocked(op.pages);
          helpers.push({ alive: true, rings: [], locked: ioUringExtra + (fits ? op.pages : 0) });
          out[i] = { ok: fits, errno: fits ? '' : 'ENOMEM', pinned: P, user: U };
        }
        break;
      }
      case 'exit': {
        // The dying worker's mappings go away as on munmap (V4's leaked remap
        // charges stay: U belongs to the uid, which a helper keeps alive, or
        // root, whose record never goes; see `last` below); the
        // new worker starts with the scenario's RLIMIT_MEMLOCK and no pins.
        for (const b of bufs.values()) releaseBuf(b);
        bufs.clear();
        if (shared) U -= uringUser;
        else LV -= uringUser;
        P -= uringPinned;
        uringUser = 0;
        uringPinned = 0;
        // A fresh process pins nothing (a handed-off ring's last munmap may have charged the old mm's pinned_vm).
        P = 0;
        // `last`: the uid's last process is gone and its user_struct (both per-user counters)
        // freed (free_uid, kernel/user.c); the new worker's fork allocates a fresh one. uid 0's
        // record is the static root_user: it keeps every charge, V4's leaks included, until reboot.
        if (op.last === true && s.root !== true) {
          U = 0;
          LV = 0;
        }
        R = rlimitPages(s.rlimit_kb, pageKb);
        cap = s.cap_ipc_lock;
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'sysctl': {
        if (op.name === 'perf_event_mlock_kb') mlockKb = op.value;
        else paranoid = op.value;
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'rlimit': {
        R = rlimitPages(op.memlock_kb, pageKb);
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'cpu': {
        if (op.cpu < s.cpus) {
          if (op.online) offline.delete(op.cpu);
          else offline.add(op.cpu);
        } else if (op.online) extraOnline.add(op.cpu);
        else extraOnline.delete(op.cpu);
        cpus = s.cpus - offline.size + extraOnline.size;
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      }
      case 'hang':
      case 'sysrq':
        out[i] = { ok: true, errno: '', pinned: P, user: U };
        break;
      default: {
        const never: never = op;
        throw new ScriptError(i, `unknown op ${JSON.stringify(never)}`);
      }
    }
  }
  return out;

  /** A new ring buffer for `b`: split, check, charge. */
  function firstMapping(b: Buf): ExpectedOp {
    const r = charge(b.ue);
    if (!r.ok) return r;
    b.userCharge = sp.userCharge;
    b.extra = sp.extra;
    b.mapCount = 1;
    b.own = 1;
    return r;
  }

  /** perf_mmap()'s split, check and charge of `ue` new pages (a ring buffer's or an AUX area's); `sp` keeps the split. */
  function charge(ue: number): ExpectedOp {
    const L = userLockLimit(mlockKb, cpus, pageKb);
    split(U, ue, L, sp);
    const locked = P + sp.extra;
    const check: MapCheck = { userLocked: sp.userLocked, extra: sp.extra, pinnedBefore: P, locked, lockLimit: R, userLockLimit: L };
    if (locked > R && paranoid > -1 && !cap) {
      return { ok: false, errno: 'EPERM', pinned: P, user: U, check };
    }
    U += sp.userCharge;
    P = locked;
    return { ok: true, errno: '', pinned: P, user: U, check };
  }
}
