// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

#include "textflag.h"

// Session 18: SILK's throughput-bound filters four samples at a time in SSE2
// (every amd64). Lane j of every register is sample i+j, and each lane does
// the Go loop's products and sums in the Go loop's order (IEEE single
// precision per lane, no fused multiply-add), so the results are the same
// bit for bit (TestRewhiten16_SameAsGo, TestLTPFilter_SameAsGo).

// func rewhiten16x4(dst, src []float32, a *[16]float32)
//
// rewhitenRange for d_LPC 16 and len(dst) a multiple of 4 (src holds
// len(dst)+16 samples: the caller checks): dst[i] = clamp(src[i+16] -
// ((s0+s1)+(s2+s3))), where s_l sums src[i+15-k]*a[k] for k = l, l+4, l+8,
// l+12 in that order, from zero.
//
// X0-X3 s0-s3 of samples i..i+3, X4 X5 products, X6-X15 a[0]-a[9]
// broadcast; the frame holds a[10]-a[15] broadcast (0-95), -1 (96) and 1
// (112). SI = &src[i], DI = &dst[i].
TEXT ·rewhiten16x4(SB), NOSPLIT, $128-56
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	MOVQ a+48(FP), AX
	SHRQ $2, CX
	JZ   done
	MOVSS  0(AX), X6
	SHUFPS $0, X6, X6
	MOVSS  4(AX), X7
	SHUFPS $0, X7, X7
	MOVSS  8(AX), X8
	SHUFPS $0, X8, X8
	MOVSS  12(AX), X9
	SHUFPS $0, X9, X9
	MOVSS  16(AX), X10
	SHUFPS $0, X10, X10
	MOVSS  20(AX), X11
	SHUFPS $0, X11, X11
	MOVSS  24(AX), X12
	SHUFPS $0, X12, X12
	MOVSS  28(AX), X13
	SHUFPS $0, X13, X13
	MOVSS  32(AX), X14
	SHUFPS $0, X14, X14
	MOVSS  36(AX), X15
	SHUFPS $0, X15, X15
	MOVSS  40(AX), X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 0(SP)
	MOVSS  44(AX), X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 16(SP)
	MOVSS  48(AX), X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 32(SP)
	MOVSS  52(AX), X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 48(SP)
	MOVSS  56(AX), X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 64(SP)
	MOVSS  60(AX), X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 80(SP)
	MOVL   $0xbf800000, BX
	MOVL   BX, X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 96(SP)
	MOVL   $0x3f800000, BX
	MOVL   BX, X0
	SHUFPS $0, X0, X0
	MOVUPS X0, 112(SP)

loop:
	XORPS X0, X0
	XORPS X1, X1
	XORPS X2, X2
	XORPS X3, X3
	MOVUPS 60(SI), X4
	MULPS  X6, X4
	ADDPS  X4, X0
	MOVUPS 56(SI), X5
	MULPS  X7, X5
	ADDPS  X5, X1
	MOVUPS 52(SI), X4
	MULPS  X8, X4
	ADDPS  X4, X2
	MOVUPS 48(SI), X5
	MULPS  X9, X5
	ADDPS  X5, X3
	MOVUPS 44(SI), X4
	MULPS  X10, X4
	ADDPS  X4, X0
	MOVUPS 40(SI), X5
	MULPS  X11, X5
	ADDPS  X5, X1
	MOVUPS 36(SI), X4
	MULPS  X12, X4
	ADDPS  X4, X2
	MOVUPS 32(SI), X5
	MULPS  X13, X5
	ADDPS  X5, X3
	MOVUPS 28(SI), X4
	MULPS  X14, X4
	ADDPS  X4, X0
	MOVUPS 24(SI), X5
	MULPS  X15, X5
	ADDPS  X5, X1
	MOVUPS 20(SI), X4
	MOVUPS 0(SP), X5
	MULPS  X5, X4
	ADDPS  X4, X2
	MOVUPS 16(SI), X5
	MOVUPS 16(SP), X4
	MULPS  X4, X5
	ADDPS  X5, X3
	MOVUPS 12(SI), X4
	MOVUPS 32(SP), X5
	MULPS  X5, X4
	ADDPS  X4, X0
	MOVUPS 8(SI), X5
	MOVUPS 48(SP), X4
	MULPS  X4, X5
	ADDPS  X5, X1
	MOVUPS 4(SI), X4
	MOVUPS 64(SP), X5
	MULPS  X5, X4
	ADDPS  X4, X2
	MOVUPS 0(SI), X5
	MOVUPS 80(SP), X4
	MULPS  X4, X5
	ADDPS  X5, X3

	// (s0+s1)+(s2+s3); src[i+16] minus it, clamped to [-1, 1] as
	// clampNegativeOneToOne (MAXPS/MINPS give their second operand, the
	// sample, for a NaN, and -1 or 1 where it equals them)
	ADDPS  X1, X0
	ADDPS  X3, X2
	ADDPS  X2, X0
	MOVUPS 64(SI), X4
	SUBPS  X0, X4
	MOVUPS 96(SP), X5
	MAXPS  X4, X5
	MOVUPS 112(SP), X4
	MINPS  X5, X4
	MOVUPS X4, (DI)

	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JNZ  loop

done:
	RET

// func ltpFilter4(res, past []float32, b *[5]float32)
//
// ltpFilter for len(res) a multiple of 4 (past holds len(res)+4 samples;
// where it is res itself, it lies at least 8 samples behind, so that the
// samples a block reads are final: the caller checks): res[i] +=
// past[i+4]*b[0], then past[i+3]*b[1], ... past[i]*b[4].
//
// X0 res[i..i+3], X1 products, X8-X12 b[0]-b[4] broadcast.
TEXT ·ltpFilter4(SB), NOSPLIT, $0-56
	MOVQ res_base+0(FP), DI
	MOVQ res_len+8(FP), CX
	MOVQ past_base+24(FP), SI
	MOVQ b+48(FP), AX
	SHRQ $2, CX
	JZ   ltpdone
	MOVSS  0(AX), X8
	SHUFPS $0, X8, X8
	MOVSS  4(AX), X9
	SHUFPS $0, X9, X9
	MOVSS  8(AX), X10
	SHUFPS $0, X10, X10
	MOVSS  12(AX), X11
	SHUFPS $0, X11, X11
	MOVSS  16(AX), X12
	SHUFPS $0, X12, X12

ltploop:
	MOVUPS (DI), X0
	MOVUPS 16(SI), X1
	MULPS  X8, X1
	ADDPS  X1, X0
	MOVUPS 12(SI), X1
	MULPS  X9, X1
	ADDPS  X1, X0
	MOVUPS 8(SI), X1
	MULPS  X10, X1
	ADDPS  X1, X0
	MOVUPS 4(SI), X1
	MULPS  X11, X1
	ADDPS  X1, X0
	MOVUPS 0(SI), X1
	MULPS  X12, X1
	ADDPS  X1, X0
	MOVUPS X0, (DI)

	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JNZ  ltploop

ltpdone:
	RET

// func lpcSynthesis16x(out []float32, a *[16]float32, res, history []float32, gain float32)
//
// lpcSynthesis16 (history holds the 16 samples before the subframe, then
// room for its len(out) own, written as lpc; res len(out) samples: the
// caller checks). The products of the samples 5 to 16 before the one
// computed go four at a time (s0-s3, session 18): they do not wait for the
// recursion. The newer four products, the sums and the gain are scalar, in
// lpcSynthesis16Go's order (session 19): from gain*res, the samples 4, 3
// and 2 before, the older sum, and last the newest sample's product, so
// that the recursion's chain is one product and one addition. The clamp to
// out is a pass of its own, four samples at a time.
//
// X0 s0-s3 and the older sum, X1-X3 temporaries, X4-X7 the samples 4, 3,
// 2 and 1 before (-1 and 1 in the clamp's pass), X8-X10 a[0:4], a[4:8],
// a[8:12], X11-X14 a[12]-a[15], X15 gain; SI history, DX res, DI out,
// BX i, CX len(out).
TEXT ·lpcSynthesis16x(SB), NOSPLIT, $0-84
	MOVQ   out_base+0(FP), DI
	MOVQ   out_len+8(FP), CX
	MOVQ   a+24(FP), AX
	MOVQ   res_base+32(FP), DX
	MOVQ   history_base+56(FP), SI
	MOVSS  gain+80(FP), X15
	TESTQ  CX, CX
	JZ     lpcdone
	MOVUPS 0(AX), X8
	MOVUPS 16(AX), X9
	MOVUPS 32(AX), X10
	MOVSS  48(AX), X11
	MOVSS  52(AX), X12
	MOVSS  56(AX), X13
	MOVSS  60(AX), X14
	// the newest four samples in registers: X4 = x[12], X5 = x[13],
	// X6 = x[14] (second), X7 = x[15] (newest)
	MOVSS  48(SI), X4
	MOVSS  52(SI), X5
	MOVSS  56(SI), X6
	MOVSS  60(SI), X7
	XORQ   BX, BX

lpcloop:
	// s_l = x[l]*a[l] + x[4+l]*a[4+l] + x[8+l]*a[8+l], x = history[i:];
	// older = (s0+s2) + (s1+s3)
	MOVUPS  (SI)(BX*4), X0
	MULPS   X8, X0
	MOVUPS  16(SI)(BX*4), X1
	MULPS   X9, X1
	ADDPS   X1, X0
	MOVUPS  32(SI)(BX*4), X1
	MULPS   X10, X1
	ADDPS   X1, X0
	MOVHLPS X0, X1
	ADDPS   X1, X0
	PSHUFD  $0x55, X0, X1
	ADDSS   X1, X0

	// t = gain*res[i]; t += x[12]*a[12]; t += x[13]*a[13];
	// t += second*a[14]; t += older; lpc[i] = t + newest*a[15]: each
	// sample's product joins the sum as late as its age allows, so that
	// the recursion's chain is one product and one addition per sample
	MOVSS (DX)(BX*4), X2
	MULSS X15, X2
	MOVAPS X4, X1
	MULSS X11, X1
	ADDSS X1, X2
	MOVAPS X5, X1
	MULSS X12, X1
	ADDSS X1, X2
	MOVAPS X6, X1
	MULSS X13, X1
	ADDSS X1, X2
	ADDSS X0, X2
	MOVAPS X7, X1
	MULSS X14, X1
	ADDSS X2, X1

	MOVSS  X1, 64(SI)(BX*4)
	MOVAPS X5, X4
	MOVAPS X6, X5
	MOVAPS X7, X6
	MOVAPS X1, X7

	INCQ BX
	CMPQ BX, CX
	JLT  lpcloop

	// out[i] = clamp(lpc[i]) as clampNegativeOneToOne, four at a time
	// (MAXPS/MINPS give their second operand, the sample, for a NaN, and
	// -1 or 1 where it equals them), then one at a time
	MOVL   $0xbf800000, AX
	MOVL   AX, X4
	SHUFPS $0, X4, X4
	MOVL   $0x3f800000, AX
	MOVL   AX, X5
	SHUFPS $0, X5, X5
	XORQ   BX, BX
	MOVQ   CX, R8
	ANDQ   $-4, R8
	JZ     clamp1

clamp4:
	MOVUPS 64(SI)(BX*4), X1
	MOVAPS X4, X2
	MAXPS  X1, X2
	MOVAPS X5, X3
	MINPS  X2, X3
	MOVUPS X3, (DI)(BX*4)
	ADDQ   $4, BX
	CMPQ   BX, R8
	JLT    clamp4

clamp1:
	CMPQ  BX, CX
	JGE   lpcdone
	MOVSS 64(SI)(BX*4), X1
	MOVAPS X4, X2
	MAXSS X1, X2
	MOVAPS X5, X3
	MINSS X2, X3
	MOVSS X3, (DI)(BX*4)
	INCQ  BX
	JMP   clamp1

lpcdone:
	RET

// func scale4(dst, src []float32, scale float32)
//
// dst[i] = src[i]*scale for the first len(dst)&^3 samples (src as long:
// the caller checks; dst may be src).
TEXT ·scale4(SB), NOSPLIT, $0-52
	MOVQ   dst_base+0(FP), DI
	MOVQ   dst_len+8(FP), CX
	MOVQ   src_base+24(FP), SI
	MOVSS  scale+48(FP), X1
	SHUFPS $0, X1, X1
	SHRQ   $2, CX
	JZ     scaledone

scaleloop:
	MOVUPS (SI), X0
	MULPS  X1, X0
	MOVUPS X0, (DI)
	ADDQ   $16, SI
	ADDQ   $16, DI
	DECQ   CX
	JNZ    scaleloop

scaledone:
	RET

// func excitation4(res []float32, eRaw []int32, seed uint32, offsetQ23 int32) uint32
//
// decodeExcitation's reconstruction of e_Q23 into res, res[i] =
// e_Q23[i]/2**23, for the first len(res)&^3 samples (eRaw as long: the
// caller checks), four at a time; it returns the seed after them. The seed
// is a chain through every sample (seed = 196314165*seed + 907633515, the
// inversion from its top bit, then seed += e_raw[i]): scalar, its four
// inversion masks gathered into a register; the rest in SSE2:
// sign(e)*20 as (e>>31 | -e>>>31)*20, q = (e<<8) - sign(e)*20 + offset,
// (q ^ mask) - mask, to float32 (exact: under 24 bits) times 2**-23.
//
// BX seed, SI = &eRaw[i], DI = &res[i]; X5 offset, X6 2**-23.
TEXT ·excitation4(SB), NOSPLIT, $0-60
	MOVQ  res_base+0(FP), DI
	MOVQ  res_len+8(FP), CX
	MOVQ  eRaw_base+24(FP), SI
	MOVL  seed+48(FP), BX
	MOVL  offsetQ23+52(FP), AX
	MOVL  AX, X5
	PSHUFD $0, X5, X5
	MOVL  $0x34000000, AX
	MOVL  AX, X6
	PSHUFD $0, X6, X6
	SHRQ  $2, CX
	JZ    excdone

excloop:
	// the seeds' masks, sample by sample
	IMULL $196314165, BX
	ADDL  $907633515, BX
	MOVL  BX, R8
	SARL  $31, R8
	ADDL  (SI), BX
	IMULL $196314165, BX
	ADDL  $907633515, BX
	MOVL  BX, R9
	SARL  $31, R9
	ADDL  4(SI), BX
	IMULL $196314165, BX
	ADDL  $907633515, BX
	MOVL  BX, R10
	SARL  $31, R10
	ADDL  8(SI), BX
	IMULL $196314165, BX
	ADDL  $907633515, BX
	MOVL  BX, R11
	SARL  $31, R11
	ADDL  12(SI), BX
	MOVL      R8, X3
	MOVL      R9, X4
	PUNPCKLLQ X4, X3
	MOVL      R10, X4
	MOVL      R11, X7
	PUNPCKLLQ X7, X4
	PUNPCKLQDQ X4, X3

	// sign(e)*20
	MOVOU (SI), X0
	MOVO  X0, X1
	PSRAL $31, X1
	PXOR  X2, X2
	PSUBL X0, X2
	PSRLL $31, X2
	POR   X2, X1
	MOVO  X1, X2
	PSLLL $4, X1
	PSLLL $2, X2
	PADDL X2, X1

	// q = (e<<8) - sign(e)*20 + offset; (q ^ mask) - mask; / 2**23
	PSLLL    $8, X0
	PSUBL    X1, X0
	PADDL    X5, X0
	PXOR     X3, X0
	PSUBL    X3, X0
	CVTPL2PS X0, X0
	MULPS    X6, X0
	MOVUPS   X0, (DI)

	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JNZ  excloop

excdone:
	MOVL BX, ret+56(FP)
	RET

// func nonzero16(masks []uint16, eRaw []int32)
//
// masks[b] = the bits i where eRaw[16b+i] != 0, for each 16-coefficient
// block b of masks (eRaw holds 16*len(masks): the caller checks):
// PCMPEQL against zero, packed to 16 bytes with saturation (0 stays 0, -1
// stays -1), PMOVMSKB, inverted.
TEXT ·nonzero16(SB), NOSPLIT, $0-48
	MOVQ  masks_base+0(FP), DI
	MOVQ  masks_len+8(FP), CX
	MOVQ  eRaw_base+24(FP), SI
	TESTQ CX, CX
	JZ    nzdone
	PXOR  X7, X7

nzloop:
	MOVOU    (SI), X0
	MOVOU    16(SI), X1
	MOVOU    32(SI), X2
	MOVOU    48(SI), X3
	PCMPEQL  X7, X0
	PCMPEQL  X7, X1
	PCMPEQL  X7, X2
	PCMPEQL  X7, X3
	PACKSSLW X1, X0
	PACKSSLW X3, X2
	PACKSSWB X2, X0
	PMOVMSKB X0, AX
	XORL     $0xffff, AX
	MOVW     AX, (DI)
	ADDQ     $64, SI
	ADDQ     $2, DI
	DECQ     CX
	JNZ      nzloop

nzdone:
	RET
