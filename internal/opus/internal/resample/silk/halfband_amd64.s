// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

#include "textflag.h"

// func halfbandFilter4(out []int16, even, odd []float32)
//
// halfbandFilterGo for four outputs at a time: lane j of every register is
// output k+j, and each lane does halfbandFilterGo's products and sums in
// its order (IEEE single precision per lane, no fused multiply-add), so the
// result is the same bit for bit. SSE2 only (every amd64).
//
// X6 sign mask, X7 0.5 (the centre tap and the rounding), X8-X15 c0-c7;
// SI = &odd[k], DX = &even[k], DI = &out[k].
TEXT ·halfbandFilter4(SB), NOSPLIT, $0-72
	MOVQ out_base+0(FP), DI
	MOVQ out_len+8(FP), CX
	MOVQ even_base+24(FP), DX
	MOVQ odd_base+48(FP), SI
	SHRQ $2, CX
	JZ   done

	MOVSS  ·halfband12Coefs+0(SB), X8
	SHUFPS $0, X8, X8
	MOVSS  ·halfband12Coefs+4(SB), X9
	SHUFPS $0, X9, X9
	MOVSS  ·halfband12Coefs+8(SB), X10
	SHUFPS $0, X10, X10
	MOVSS  ·halfband12Coefs+12(SB), X11
	SHUFPS $0, X11, X11
	MOVSS  ·halfband12Coefs+16(SB), X12
	SHUFPS $0, X12, X12
	MOVSS  ·halfband12Coefs+20(SB), X13
	SHUFPS $0, X13, X13
	MOVSS  ·halfband12Coefs+24(SB), X14
	SHUFPS $0, X14, X14
	MOVSS  ·halfband12Coefs+28(SB), X15
	SHUFPS $0, X15, X15
	MOVL   $0x3f000000, AX
	MOVL   AX, X7
	SHUFPS $0, X7, X7
	MOVL   $0x80000000, AX
	MOVL   AX, X6
	SHUFPS $0, X6, X6

loop:
	// s0 = 0.5*even[k+8] + c0*(o[7]+o[8]) + c2*(o[5]+o[10]) + c4*(o[3]+o[12]) + c6*(o[1]+o[14])
	MOVUPS 32(DX), X0
	MULPS  X7, X0
	MOVUPS 28(SI), X1
	MOVUPS 32(SI), X2
	ADDPS  X2, X1
	MULPS  X8, X1
	ADDPS  X1, X0
	MOVUPS 20(SI), X1
	MOVUPS 40(SI), X2
	ADDPS  X2, X1
	MULPS  X10, X1
	ADDPS  X1, X0
	MOVUPS 12(SI), X1
	MOVUPS 48(SI), X2
	ADDPS  X2, X1
	MULPS  X12, X1
	ADDPS  X1, X0
	MOVUPS 4(SI), X1
	MOVUPS 56(SI), X2
	ADDPS  X2, X1
	MULPS  X14, X1
	ADDPS  X1, X0

	// s1 = c1*(o[6]+o[9]) + c3*(o[4]+o[11]) + c5*(o[2]+o[13]) + c7*(o[0]+o[15])
	MOVUPS 24(SI), X3
	MOVUPS 36(SI), X2
	ADDPS  X2, X3
	MULPS  X9, X3
	MOVUPS 16(SI), X1
	MOVUPS 44(SI), X2
	ADDPS  X2, X1
	MULPS  X11, X1
	ADDPS  X1, X3
	MOVUPS 8(SI), X1
	MOVUPS 52(SI), X2
	ADDPS  X2, X1
	MULPS  X13, X1
	ADDPS  X1, X3
	MOVUPS 0(SI), X1
	MOVUPS 60(SI), X2
	ADDPS  X2, X1
	MULPS  X15, X1
	ADDPS  X1, X3

	// v = s0 + s1; out = sat16(trunc(v + 0.5 with v's sign))
	ADDPS     X3, X0
	MOVAPS    X0, X1
	ANDPS     X6, X1
	ORPS      X7, X1
	ADDPS     X0, X1
	CVTTPS2PL X1, X1
	PACKSSLW  X1, X1
	MOVQ      X1, (DI)

	ADDQ $16, SI
	ADDQ $16, DX
	ADDQ $8, DI
	DECQ CX
	JNZ  loop

done:
	RET

// func halfbandInput4(even, odd, in []float32)
//
// even[i] = float32(bitdepth.Float32ToSigned16(in[2i])) and odd[i] the same
// of in[2i+1], for the first len(even)&^3 pairs (in holds them: the caller
// checks), eight samples at a time: x = in*32768 (float32, exact), a NaN
// to 0 (Float32ToSigned16's int32 conversion gives 0x80000000, whose low 16
// bits are 0), clamped to [-32768.5, 32767.5] (its saturation), truncated
// (t) and moved one away from zero where |x - t| >= 0.5: x rounded half away
// from zero, as Float32ToSigned16's x ± 0.5 in float64 truncated (x - t is
// exact); saturated to 16 bits and back to float32.
//
// X8 32768, X9 32767.5, X10 -32768.5, X11 |.| mask, X12 0.5, X13 int32 1.
TEXT ·halfbandInput4(SB), NOSPLIT, $0-72
	MOVQ even_base+0(FP), DI
	MOVQ even_len+8(FP), CX
	MOVQ odd_base+24(FP), DX
	MOVQ in_base+48(FP), SI
	SHRQ $2, CX
	JZ   indone

	MOVL   $0x47000000, AX
	MOVL   AX, X8
	SHUFPS $0, X8, X8
	MOVL   $0x46ffff00, AX
	MOVL   AX, X9
	SHUFPS $0, X9, X9
	MOVL   $0xc7000080, AX
	MOVL   AX, X10
	SHUFPS $0, X10, X10
	MOVL   $0x7fffffff, AX
	MOVL   AX, X11
	SHUFPS $0, X11, X11
	MOVL   $0x3f000000, AX
	MOVL   AX, X12
	SHUFPS $0, X12, X12
	MOVL   $1, AX
	MOVL   AX, X13
	SHUFPS $0, X13, X13

inloop:
	MOVUPS (SI), X0
	MOVUPS 16(SI), X1
	MULPS  X8, X0
	MULPS  X8, X1

	// NaN to 0; clamp
	MOVAPS X0, X2
	CMPPS  X0, X2, $7
	ANDPS  X2, X0
	MOVAPS X1, X3
	CMPPS  X1, X3, $7
	ANDPS  X3, X1
	MINPS  X9, X0
	MINPS  X9, X1
	MAXPS  X10, X0
	MAXPS  X10, X1

	// t = trunc(x); |x - t| >= 0.5: t += (x < 0 ? -1 : 1)
	CVTTPS2PL X0, X2
	CVTPL2PS  X2, X4
	MOVAPS    X0, X5
	SUBPS     X4, X5
	ANDPS     X11, X5
	MOVAPS    X12, X4
	CMPPS     X5, X4, $2
	PSRAL     $31, X0
	POR       X13, X0
	PAND      X4, X0
	PADDL     X0, X2

	CVTTPS2PL X1, X3
	CVTPL2PS  X3, X4
	MOVAPS    X1, X5
	SUBPS     X4, X5
	ANDPS     X11, X5
	MOVAPS    X12, X4
	CMPPS     X5, X4, $2
	PSRAL     $31, X1
	POR       X13, X1
	PAND      X4, X1
	PADDL     X1, X3

	// saturated to 16 bits, sign-extended back to 32, to float32
	PACKSSLW  X3, X2
	MOVAPS    X2, X3
	PUNPCKLWL X2, X2
	PUNPCKHWL X3, X3
	PSRAL     $16, X2
	PSRAL     $16, X3
	CVTPL2PS  X2, X2
	CVTPL2PS  X3, X3

	// even (0, 2, 4, 6) and odd (1, 3, 5, 7) samples
	MOVAPS X2, X4
	SHUFPS $0x88, X3, X2
	SHUFPS $0xdd, X3, X4
	MOVUPS X2, (DI)
	MOVUPS X4, (DX)

	ADDQ $32, SI
	ADDQ $16, DI
	ADDQ $16, DX
	DECQ CX
	JNZ  inloop

indone:
	RET
