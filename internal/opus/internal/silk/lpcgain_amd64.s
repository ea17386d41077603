// SPDX-FileCopyrightText: 2026 The Pion community <https://pion.ly>
// SPDX-License-Identifier: MIT

//go:build amd64 && !purego

#include "textflag.h"

// Session 20: the inverse prediction gain's recurrence
// (predictionGainRecurrenceGo) in one call, each row four values at a time
// in SSE4.1. Lane j of a block is value n+j of the row for k: next[n+j]
// from old[n+j] and old[k-1-n-j]. Each lane does predictionGainStep's
// integer arithmetic, so the gain is the same
// (TestPredictionGainRecurrence_SameAsGo):
//
//   s   = int32((rev*rc + 2^30) >> 31)         64-bit product, PMULDQ
//   t   = old - s, saturated to 32 bits         by the overflow of the
//                                               wrapping difference
//   u   = t*m2 + 2^sh + 2^(sh+32)               64-bit product
//   out = int32(u >> (sh+1)) ^ 2^31             the 2^(sh+32) back out
//   overflow where u >> (sh+33) != 0            t*m2 + 2^sh outside
//                                               [-2^(sh+32), 2^(sh+32))
//
// Only the low 32 bits of each shifted product are kept, so logical shifts
// (SSE has no 64-bit arithmetic one) give them. A product pair is lanes 0
// and 2 (PMULDQ's) and lanes 1 and 3 shifted down; PBLENDW puts the four
// 32-bit results back in order. The last block's lanes past k are set to
// zero first, which never overflows, and their results, written to next
// past k, are never read.
//
// Per row, in scalar code as the Go: the limit test, rc = -(a<<7),
// rcMult1 = 2^30 - smmul(rc, rc), the gain's product, and rcMult2 =
// inverse32VarQ(rcMult1, mult2Q+30) for this caller: its final shift is 0
// (61 - (clz-1) - (32-clz+30)), and its smlaWW's last term is 0 (the
// inverse is below 2^15, so its rshiftRound32 by 16 is 0), leaving
// inv<<16 + smulwb(err, inv).

DATA lanes<>+0(SB)/4, $0
DATA lanes<>+4(SB)/4, $1
DATA lanes<>+8(SB)/4, $2
DATA lanes<>+12(SB)/4, $3
GLOBL lanes<>(SB), RODATA|NOPTR, $16

// X0 old (in), X1 rev (in; reversed) -> X0 out; uses X1-X5, ORs overflow
// bits into X7.
#define STEP \
	MOVO    X1, X2; \
	PMULDQ  X15, X1; \
	PSRLQ   $32, X2; \
	PMULDQ  X15, X2; \
	PADDQ   X13, X1; \
	PADDQ   X13, X2; \
	PSRLQ   $31, X1; \
	PSRLQ   $31, X2; \
	PSLLQ   $32, X2; \
	PBLENDW $0xCC, X2, X1; \
	MOVO    X0, X3; \
	PSUBL   X1, X3; \
	MOVO    X0, X4; \
	PXOR    X1, X4; \
	MOVO    X0, X5; \
	PXOR    X3, X5; \
	PAND    X5, X4; \
	PSRAL   $31, X4; \
	PSRAL   $31, X0; \
	PXOR    X8, X0; \
	PXOR    X3, X0; \
	PAND    X4, X0; \
	PXOR    X3, X0; \
	MOVO    X0, X2; \
	PMULDQ  X14, X0; \
	PSRLQ   $32, X2; \
	PMULDQ  X14, X2; \
	PADDQ   X12, X0; \
	PADDQ   X12, X2; \
	MOVO    X0, X3; \
	PSRLQ   X10, X3; \
	POR     X3, X7; \
	MOVO    X2, X3; \
	PSRLQ   X10, X3; \
	POR     X3, X7; \
	PSRLQ   X11, X0; \
	PSRLQ   X11, X2; \
	PSLLQ   $32, X2; \
	PBLENDW $0xCC, X2, X0; \
	PXOR    X9, X0

// func predictionGainRecurrence4(rows *[2]predictionGainRows, order int) int32
//
// SI = &old[4], DI = &next[4] (rows are 80 bytes), R12 = k, R11 the gain
// (sign-extended). In a row: R8 = &old[4+n], R9 = &next[4+n], R10 =
// &old[4+k-4-n], BX = k-n; X15 rc, X14 m2 (every lane), X12 2^sh +
// 2^(sh+32) (each 64-bit lane), X11 sh+1, X10 sh+33 (shift counts). X13
// 2^30 (each 64-bit lane), X9 2^31, X8 2^31-1 (every lane), X7 overflow
// bits.
TEXT ·predictionGainRecurrence4(SB), NOSPLIT, $0-20
	MOVQ rows+0(FP), R8
	MOVQ order+8(FP), R12
	MOVQ R12, AX
	ANDQ $1, AX
	IMULQ $80, AX
	LEAQ 16(R8)(AX*1), SI
	XORQ $80, AX
	LEAQ 16(R8)(AX*1), DI
	MOVQ $0x40000000, R11
	MOVQ $0x40000000, AX
	MOVQ AX, X13
	PUNPCKLQDQ X13, X13
	PCMPEQL X9, X9
	PSLLL $31, X9
	PCMPEQL X8, X8
	PSRLL $1, X8
	PXOR X7, X7
	DECQ R12
	JLE  final

row:
	MOVL (SI)(R12*4), AX
	CMPL AX, $16773022
	JGT  zero
	CMPL AX, $-16773022
	JLT  zero
	SHLL $7, AX
	NEGL AX
	MOVL AX, X15
	PSHUFD $0, X15, X15
	MOVLQSX AX, BX
	IMULQ BX, BX
	SARQ $32, BX
	MOVL $0x40000000, CX
	SUBL BX, CX              // CX = rcMult1, 1 .. 2^30
	MOVLQSX CX, BX
	IMULQ BX, R11
	SARQ $32, R11
	SHLL $2, R11
	MOVLQSX R11, R11         // gain = smmul(gain, rcMult1) << 2
	BSRL CX, R13             // sh = mult2Q-1 = 31-clz
	MOVL CX, BX
	MOVL $30, CX
	SUBL R13, CX
	SHLL CX, BX              // BX = rcMult1 << (clz-1): bit 30 set
	MOVL BX, R9
	SARL $16, R9
	MOVL $0x1FFFFFFF, AX
	XORL DX, DX
	DIVL R9                  // AX = inv = (2^29-1) / (BX>>16) < 2^15
	MOVLQSX BX, BX
	IMULQ AX, BX
	SARQ $16, BX             // smulwb(BX, inv)
	MOVL $0x20000000, DX
	SUBL BX, DX
	SHLL $3, DX              // err = (2^29 - smulwb(BX, inv)) << 3
	MOVLQSX DX, DX
	IMULQ AX, DX
	SARQ $16, DX             // smulwb(err, inv)
	SHLL $16, AX
	ADDL DX, AX              // m2 = inv<<16 + smulwb(err, inv)
	MOVL AX, X14
	PSHUFD $0, X14, X14
	MOVQ R13, CX
	MOVQ $0x100000001, AX
	SHLQ CX, AX
	MOVQ AX, X12
	PUNPCKLQDQ X12, X12
	LEAQ 1(R13), AX
	MOVQ AX, X11
	LEAQ 33(R13), AX
	MOVQ AX, X10
	MOVQ SI, R8
	MOVQ DI, R9
	LEAQ -16(SI)(R12*4), R10
	MOVQ R12, BX

blocks:
	CMPQ BX, $4
	JLT  last
	MOVOU (R8), X0
	MOVOU (R10), X1
	PSHUFD $0x1B, X1, X1
	STEP
	MOVOU X0, (R9)
	ADDQ $16, R8
	ADDQ $16, R9
	SUBQ $16, R10
	SUBQ $4, BX
	JMP  blocks

last:
	TESTQ BX, BX
	JZ    rowdone
	MOVQ  BX, X6
	PSHUFD $0, X6, X6
	MOVOU lanes<>(SB), X5
	PCMPGTL X5, X6
	MOVOU (R8), X0
	PAND  X6, X0
	MOVOU (R10), X1
	PSHUFD $0x1B, X1, X1
	PAND  X6, X1
	STEP
	MOVOU X0, (R9)

rowdone:
	PTEST X7, X7
	JNZ   zero
	XCHGQ SI, DI
	DECQ  R12
	JNZ   row

final:
	MOVL (SI), AX
	CMPL AX, $16773022
	JGT  zero
	CMPL AX, $-16773022
	JLT  zero
	SHLL $7, AX
	NEGL AX
	MOVLQSX AX, BX
	IMULQ BX, BX
	SARQ $32, BX
	MOVL $0x40000000, CX
	SUBL BX, CX
	MOVLQSX CX, BX
	IMULQ BX, R11
	SARQ $32, R11
	SHLL $2, R11
	MOVL R11, ret+16(FP)
	RET

zero:
	MOVL $0, ret+16(FP)
	RET
