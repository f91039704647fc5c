package tensorio

import "math"

// Float16ToFloat32 decodes IEEE 754 half-precision bits (exactly; every half value is a float32).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN; keep the payload's top bits.
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal half: normalise.
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		man &= 0x3ff
		return math.Float32frombits(sign | e<<23 | man<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// Float32ToFloat16 encodes f as half-precision bits, rounding to nearest even; values beyond the
// half range become ±Inf, NaN stays NaN (quiet).
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13) // quiet NaN
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half or zero.
		if e < -10 {
			return sign
		}
		m := man | 0x800000 // implicit leading one
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rest := m & (1<<shift - 1)
		r := m >> shift
		if rest > half || (rest == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rest := man & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to Inf: that is correct rounding
	}
	return sign | uint16(r)
}

// BFloat16ToFloat32 decodes bfloat16 bits.
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 encodes f as bfloat16 bits, rounding to nearest even; NaN stays NaN.
func Float32ToBFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// Float16sToFloat32s decodes src into dst (grown or allocated as needed) and returns it.
func Float16sToFloat32s(dst []float32, src []uint16) []float32 {
	if cap(dst) < len(src) {
		dst = make([]float32, len(src))
	}
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = Float16ToFloat32(h)
	}
	return dst
}

// Float32sToFloat16s encodes src into dst (grown or allocated as needed) and returns it.
func Float32sToFloat16s(dst []uint16, src []float32) []uint16 {
	if cap(dst) < len(src) {
		dst = make([]uint16, len(src))
	}
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = Float32ToFloat16(f)
	}
	return dst
}

// ToFloat32 returns a Float32 copy of a Float16, BFloat16 or Float64 tensor (a Float32 tensor is
// cloned), for mixed-precision work.
func ToFloat32(t *Tensor) (*Tensor, error) {
	f, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: Float32, Shape: cloneShape(t.Shape), Data: f}, nil
}

// ToFloat16 returns a Float16 copy of a floating-point tensor, rounding to nearest even.
func ToFloat16(t *Tensor) (*Tensor, error) {
	if t.DType == Float16 {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		return t.Clone(), nil
	}
	f, err := t.AsFloat32()
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: Float16, Shape: cloneShape(t.Shape), Data: Float32sToFloat16s(nil, f)}, nil
}
