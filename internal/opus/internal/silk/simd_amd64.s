// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

#include "textflag.h"

// Session 18: SILK's throughput-bound filters four samples at a time in SSE2
// (every amd64). Lane j of every register is sample i+j, and each lane does
// the Go loop's products and sums in the Go loop's order (IEEE single
// precision per lane, no fused multiply-add), so the results are the same
// bit for bit (TestLTPFilter_SameAsGo, TestScaleInto_SameAsGo).

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
