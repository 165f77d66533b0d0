"""The banded kernel: window attention plus global tokens in linear time and memory.

:func:`banded_attention` computes, for every query ``i``, attention over the keys ``j`` with
``|i - j| <= window`` plus the global tokens, and gives the global tokens full rows, without
ever building the ``n x n`` score matrix or copying keys into overlapping windows:

- Queries are cut into blocks of ``b`` tokens; block ``i`` sees the ``span = b + 2 * window``
  keys around it. The windows of a group of blocks are one *strided view* of the keys (block
  ``i + 1``'s window starts ``b`` keys after block ``i``'s), which PyTorch's fused CPU attention
  kernel (the one ``scaled_dot_product_attention`` dispatches to) reads in place. The band's
  shape is a ``(b, span)`` mask shared by every block.
- Global keys get a second fused call per group; the two partial results are merged with
  their log-sum-exps, as flash attention merges its tiles.
- A custom :class:`torch.autograd.Function` saves only ``q, k, v``, the output and the
  log-sum-exp of every row (what the fused dense kernel saves); the backward pass rebuilds the
  same views and calls the fused backward kernel, which recomputes the probabilities.

Global tokens play two roles, which can be switched separately (for the ablations): as *keys*
(every query may attend to them) and as *queries* (their rows attend to every key, one more
fused call of ``G`` rows).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GROUP_QUERIES = 2048  # queries per fused call
_FLASH = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
_FLASH_BACKWARD = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward


def _masked(dtype: torch.dtype) -> float:
    """The additive bias of a masked key: very negative, but two of them still finite.

    Not ``-inf``: a padding query whose window holds no real key would then get NaN, and NaN
    values at masked positions poison the next layer (``0 * NaN``).
    """
    return torch.finfo(dtype).min / 4


def _bias(ok: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive float bias of a bool "may attend" tensor: 0 where True, :func:`_masked` else."""
    return torch.zeros(ok.shape, dtype=dtype, device=ok.device).masked_fill_(~ok, _masked(dtype))


class _Plan:
    """How one sequence of ``n`` tokens is cut into blocks and groups of blocks.

    Every method takes one sequence's tensor in the ``(n, H, ...)`` layout (the layout of
    transformers' projections) and returns the ``(count, H, rows, ...)`` tensors of a group.
    """

    def __init__(self, n: int, window: int, block: int, dtype: torch.dtype, device):
        self.n, self.window, self.block = n, window, block
        self.span = block + 2 * window  # keys of one block's window
        self.blocks = math.ceil(n / block)
        self.per_group = max(1, GROUP_QUERIES // block)
        self.chunks = math.ceil(self.span / block)  # a window read as chunks of b keys
        r = torch.arange(block, device=device)[:, None]
        s = torch.arange(self.span, device=device)[None, :]
        # slot s of block i is key i * b + s - window: in the window of query i * b + r?
        self.band = _bias((s >= r) & (s <= r + 2 * window), dtype)

    def groups(self):
        for start in range(0, self.blocks, self.per_group):
            yield start, min(self.per_group, self.blocks - start)

    def _slice(self, t: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Rows ``[lo, hi)`` of ``t``, zero-padded where out of range (a view when inside)."""
        part = t[max(lo, 0) : min(hi, self.n)]
        if lo >= 0 and hi <= self.n:
            return part
        pad = [0, 0] * (t.dim() - 1) + [max(0, -lo), max(0, hi - self.n)]
        return F.pad(part, pad)

    def rows(self, t: torch.Tensor, start: int, count: int) -> torch.Tensor:
        """``(count, H, b, ...)``: the group's query rows (or output, log-sum-exp rows)."""
        b = self.block
        return (
            self._slice(t, start * b, (start + count) * b).unflatten(0, (count, b)).transpose(1, 2)
        )

    def put_rows(self, dst: torch.Tensor, src: torch.Tensor, start: int, count: int) -> None:
        """Write ``(count, H, b, ...)`` rows back into ``dst`` ``(n, H, ...)``."""
        lo, hi = start * self.block, min((start + count) * self.block, self.n)
        dst[lo:hi] = src.transpose(1, 2).flatten(0, 1)[: hi - lo]

    def windows(self, t: torch.Tensor, start: int, count: int) -> torch.Tensor:
        """``(count, H, span, d)``: every block's window of keys, a strided view (no copy)."""
        lo = start * self.block - self.window
        part = self._slice(t, lo, lo + (count - 1) * self.block + self.span).contiguous()
        heads, dim = t.shape[1:]
        view = part.as_strided(
            (count, self.span, heads, dim),
            (self.block * heads * dim, heads * dim, dim, 1),
            part.storage_offset(),
        )
        return view.transpose(1, 2)

    def mask(self, band_ok: torch.Tensor | None, start: int, count: int) -> torch.Tensor:
        """``(count, 1, b, span)`` float: the band, and which of its keys are allowed."""
        lo = start * self.block - self.window
        hi = lo + (count - 1) * self.block + self.span
        inside = lo >= 0 and hi <= self.n
        if inside and (band_ok is None or bool(band_ok[lo:hi].all())):
            return self.band.expand(count, 1, -1, -1)  # every key real: the shared band
        ok = (
            torch.ones(self.n, dtype=torch.bool, device=self.band.device)
            if band_ok is None
            else band_ok
        )
        bias = _bias(self._slice(ok, lo, hi), self.band.dtype)  # out of range: masked
        return (self.band + bias.unfold(0, self.span, self.block)[:, None, :])[:, None]

    def add_windows(self, dst: torch.Tensor, win: torch.Tensor, start: int, count: int) -> None:
        """Sum window gradients ``(count, H, span, d)`` into ``dst`` ``(n, H, d)``."""
        b, n = self.block, self.n
        win = win.transpose(1, 2)  # (count, span, H, d)
        for c in range(self.chunks):
            width = min(b, self.span - c * b)
            first = start * b - self.window + c * b  # key of chunk c of the group's first block
            src = win[:, c * b : c * b + width]
            if first >= 0 and first + count * b <= n:  # one strided add, no copy
                dst[first : first + count * b].unflatten(0, (count, b))[:, :width] += src
                continue
            for i in range(count):  # at the sequence's ends: block by block, clipped
                lo = first + i * b
                a, z = max(lo, 0), min(lo + width, n)
                if z > a:
                    dst[a:z] += src[i, a - lo : z - lo]


class _Banded(torch.autograd.Function):
    """Window + global attention of a batch, views rebuilt in the backward pass.

    Inputs in the ``(B, n, H, d)`` layout: ``q, k, v``. ``valid`` ``(B, n) bool`` (the real keys)
    or None (all real). ``slots`` ``(B, G)``: positions of the global tokens, ``slot_ok``
    ``(B, G) bool``: which slots are real; ``glob_keys``/``glob_queries`` switch their two roles.
    Output ``(B, n, H, d)``.

    Saved for backward: ``q, k, v``, the output and the log-sum-exp of each row, as the fused
    dense kernel saves, plus the few slot indices. The global rows' output and log-sum-exp
    overwrite their band rows; the band backward then gets no gradient on those rows, and
    their (larger) dense log-sum-exp keeps the recomputed band probabilities finite.
    """

    @staticmethod
    def forward(ctx, q, k, v, valid, slots, slot_ok, glob_keys, glob_queries, window, block, scale):
        out = torch.empty_like(q)
        lse = q.new_empty(q.shape[:3], dtype=torch.promote_types(q.dtype, torch.float32))
        for seq in _sequences(q, valid, slots, slot_ok, glob_keys):
            _forward(
                seq,
                q[seq.i],
                k[seq.i],
                v[seq.i],
                out[seq.i],
                lse[seq.i],
                glob_queries,
                window,
                block,
                scale,
            )
        ctx.save_for_backward(q, k, v, valid, slots, slot_ok, out, lse)
        ctx.config = (glob_keys, glob_queries, window, block, scale)
        return out

    @staticmethod
    def backward(ctx, d_out):
        q, k, v, valid, slots, slot_ok, out, lse = ctx.saved_tensors
        glob_keys, glob_queries, window, block, scale = ctx.config
        d_out = d_out.contiguous()
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for seq in _sequences(q, valid, slots, slot_ok, glob_keys):
            i = seq.i
            _backward(
                seq,
                q[i],
                k[i],
                v[i],
                out[i],
                lse[i],
                d_out[i],
                dq[i],
                dk[i],
                dv[i],
                glob_queries,
                window,
                block,
                scale,
            )
        return dq, dk, dv, *([None] * 8)


class _Sequence:
    """One sequence of the batch: its real keys, global positions and band keys."""

    def __init__(self, i: int, n: int, valid, slots, slot_ok, glob_keys: bool, device):
        self.i = i
        self.valid = None if valid is None else valid[i]
        self.globals = slots[i][slot_ok[i]]  # (G,) positions
        band_ok = self.valid
        if glob_keys and len(self.globals):  # the global keys are added once, not in the band
            band_ok = (
                torch.ones(n, dtype=torch.bool, device=device)
                if band_ok is None
                else band_ok.clone()
            )
            band_ok[self.globals] = False
        self.band_ok = band_ok
        self.glob_keys = glob_keys and len(self.globals) > 0

    def dense_mask(self, dtype) -> torch.Tensor | None:
        """The padding bias of the global rows, ``(1, 1, 1, n)`` (None: no padding)."""
        return None if self.valid is None else _bias(self.valid, dtype)[None, None, None, :]


def _sequences(q, valid, slots, slot_ok, glob_keys):
    for i in range(q.shape[0]):
        yield _Sequence(i, q.shape[1], valid, slots, slot_ok, glob_keys, q.device)


def _forward(seq, q, k, v, out, lse, glob_queries, window, block, scale):
    """One sequence: ``q, k, v, out`` ``(n, H, d)``, ``lse`` ``(n, H)``; fills ``out`` and ``lse``."""
    plan = _Plan(q.shape[0], window, block, q.dtype, q.device)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    for start, count in plan.groups():
        o, m = _FLASH(
            plan.rows(q, start, count),
            plan.windows(k, start, count),
            plan.windows(v, start, count),
            attn_mask=plan.mask(seq.band_ok, start, count),
            scale=scale,
        )
        plan.put_rows(out, o, start, count)
        plan.put_rows(lse, m, start, count)
    g = seq.globals
    if seq.glob_keys:  # merge the global keys in, as flash attention merges its tiles
        s_g = _dots(q, k[g]).mul_(scale).to(lse.dtype)  # (n, H, G)
        total = torch.logaddexp(lse, s_g.logsumexp(-1))
        out.mul_((lse - total).exp_()[..., None].to(out.dtype))
        p_g = s_g.sub_(total[..., None]).exp_().to(out.dtype)
        _per_head(out).baddbmm_(_per_head(p_g), _per_head(v[g]))  # out += p_g @ v_g
        lse.copy_(total)
    if glob_queries and len(g):  # global rows see every real key
        s = _dense_scores(seq, q[g], k, scale)  # (H, G, n)
        lse_g = s.logsumexp(-1)  # (H, G)
        p = s.sub_(lse_g[..., None]).exp_().to(out.dtype)
        out[g] = torch.einsum("hgn,nhd->ghd", p, v)
        lse[g] = lse_g.transpose(0, 1)


def _backward(seq, q, k, v, out, lse, d_out, dq, dk, dv, glob_queries, window, block, scale):
    """One sequence: fills ``dq`` and adds into ``dk``, ``dv`` (all ``(n, H, d)``)."""
    plan = _Plan(q.shape[0], window, block, q.dtype, q.device)
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    g = seq.globals
    is_global = torch.zeros(q.shape[0], dtype=torch.bool, device=q.device)
    if glob_queries:
        is_global[g] = True  # their output came from their dense rows, not from the band
    for start, count in plan.groups():
        d_rows = plan.rows(d_out, start, count)
        hit = plan.rows(is_global[:, None, None], start, count)
        if hit.any():
            d_rows = d_rows.masked_fill(hit, 0)
        dq_g, dk_w, dv_w = _FLASH_BACKWARD(
            d_rows,
            plan.rows(q, start, count),
            plan.windows(k, start, count),
            plan.windows(v, start, count),
            plan.rows(out, start, count),
            plan.rows(lse, start, count).contiguous(),
            0.0,
            False,
            attn_mask=plan.mask(seq.band_ok, start, count),
            scale=scale,
        )
        plan.put_rows(dq, dq_g, start, count)
        plan.add_windows(dk, dk_w, start, count)
        plan.add_windows(dv, dv_w, start, count)
    if seq.glob_keys:  # dS = P * (dP - rowsum(dO * O)) on the global keys' columns
        p_g = _dots(q, k[g]).mul_(scale).to(lse.dtype)
        p_g = p_g.sub_(lse[..., None]).exp_()  # (n, H, G)
        delta = (d_out * out).sum(-1).to(lse.dtype)
        dp_g = _dots(d_out, v[g]).to(lse.dtype)
        p_g[is_global] = 0  # global rows: no gradient through the band and global keys
        ds_g = dp_g.sub_(delta[..., None]).mul_(p_g).to(q.dtype)
        p_g = p_g.to(q.dtype)
        _per_head(dq).baddbmm_(_per_head(ds_g), _per_head(k[g]), alpha=scale)
        dk.index_add_(0, g, torch.einsum("nhg,nhd->ghd", ds_g, q), alpha=scale)
        dv.index_add_(0, g, torch.einsum("nhg,nhd->ghd", p_g, d_out))
    if glob_queries and len(g):
        s = _dense_scores(seq, q[g], k, scale)  # (H, G, n)
        p = s.sub_(lse[g].transpose(0, 1)[..., None].to(s.dtype)).exp_()
        d_g = d_out[g]  # (G, H, d)
        delta = torch.einsum("ghd,ghd->hg", d_g, out[g]).to(p.dtype)
        dp = torch.einsum("ghd,nhd->hgn", d_g, v).to(p.dtype)
        ds = dp.sub_(delta[..., None]).mul_(p).to(q.dtype)  # (H, G, n)
        dq[g] = torch.einsum("hgn,nhd->ghd", ds, k) * scale
        _per_head(dk).baddbmm_(ds.transpose(1, 2), _per_head(q[g]), alpha=scale)
        _per_head(dv).baddbmm_(p.to(q.dtype).transpose(1, 2), _per_head(d_g))


def _dots(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``(n, H, G)``: dot products of ``x`` ``(n, H, d)`` with each of ``rows`` ``(G, H, d)``.

    Elementwise, one global row at a time: as a matmul with ``G = 2`` columns it is tens of
    times slower on CPU.
    """
    return torch.stack([(x * row).sum(-1) for row in rows], dim=-1)


def _per_head(t: torch.Tensor) -> torch.Tensor:
    """``(n, H, ...)`` -> ``(H, n, ...)`` view, for batched matmuls per head."""
    return t.transpose(0, 1)


def _dense_scores(seq, q_g: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """``(H, G, n)`` float scores of the global rows over every key (padding masked)."""
    s = torch.einsum("ghd,nhd->hgn", q_g, k).mul_(scale)
    s = s.to(torch.promote_types(s.dtype, torch.float32))
    if seq.valid is not None:
        s = s.masked_fill_(~seq.valid, _masked(s.dtype))
    return s


def _global_slots(is_global: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the global tokens: ``(batch, G) long`` indices and ``(batch, G) bool`` validity.

    ``G`` is the largest number of global tokens in one example; shorter lists are padded with
    arbitrary non-global positions marked invalid. Positions are in ascending order.
    """
    n_global = int(is_global.sum(1).max())
    # clone: a slice would keep the whole argsort result alive in the saved tensors
    order = torch.argsort((~is_global).to(torch.int8), dim=1, stable=True)[:, :n_global].clone()
    slot_valid = torch.arange(n_global, device=is_global.device) < is_global.sum(1, keepdim=True)
    return order, slot_valid


def default_block(window: int, seq: int) -> int:
    """Query block size: about the window (at least 16, at most the sequence)."""
    return min(max(16, window), seq)


def banded_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    window: int,
    valid: torch.Tensor | None = None,
    is_global: torch.Tensor | None = None,
    *,
    global_keys: bool = True,
    global_queries: bool = True,
    scaling: float | None = None,
    dropout: float = 0.0,
    block_size: int | None = None,
) -> torch.Tensor:
    """Window attention ``|i - j| <= window`` plus global tokens, without the full score matrix.

    ``query``, ``key``, ``value``: ``(batch, heads, seq, head_dim)``. ``valid``: ``(batch, seq)
    bool``, False on padding keys. ``is_global``: ``(batch, seq) bool`` or None (no globals).
    ``global_keys``: every query may attend to the global tokens; ``global_queries``: the global
    tokens attend to every key (both True: Longformer's symmetric global attention). Returns
    ``(batch, seq, heads, head_dim)`` (the layout transformers' attention functions return).

    Same result as the masked dense computation (up to float rounding) on every query that has
    at least one key to attend to; a query with none (padding far from any real token) gets a
    finite average of its masked window, never NaN.
    """
    batch, _, seq, dim = query.shape
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}.")
    if dropout > 0:
        raise ValueError(
            f"banded_attention has no attention dropout (got {dropout}): set the model's "
            "attention_probs_dropout_prob to 0, or use backend='sdpa' to train with it."
        )
    scale = dim**-0.5 if scaling is None else scaling
    if valid is None:
        valid = torch.ones(batch, seq, dtype=torch.bool, device=query.device)
    glob = is_global & valid if is_global is not None else None
    if glob is not None and not glob.any():
        glob = None
    block = block_size or default_block(window, seq)

    if glob is None:
        slots = torch.zeros(batch, 0, dtype=torch.long, device=query.device)
        slot_ok = torch.zeros(batch, 0, dtype=torch.bool, device=query.device)
    else:
        slots, slot_ok = _global_slots(glob)  # (batch, G)
    return _Banded.apply(
        query.transpose(1, 2),
        key.transpose(1, 2),
        value.transpose(1, 2),
        None if bool(valid.all()) else valid,  # None: nothing to save
        slots,
        slot_ok,
        global_keys and glob is not None,
        global_queries and glob is not None,
        window,
        block,
        scale,
    )  # (batch, seq, heads, dim)
