package readiness

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/gowebpki/jcs"
)

// Signatures: ed25519 over the RFC 8785 (JSON Canonicalization Scheme) form
// of the verdict or aggregate with its "signature" member removed (keyId
// stays, so the key cannot be swapped). Any language with a JCS library can
// verify; the Go client in readiness/gateclient does.

// ErrUnsigned is returned when a signature is required and absent.
var ErrUnsigned = errors.New("readiness: unsigned")

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("readiness: bad signature")

// Signer signs verdicts and aggregates with one ed25519 key.
type Signer struct {
	KeyID string
	Key   ed25519.PrivateKey
}

// Verifier checks signatures against known public keys by key id.
type Verifier struct {
	Keys map[string]ed25519.PublicKey
}

// canonical is the JCS form of v without its signature member.
func canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "signature")
	raw, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

func (s *Signer) sign(v any) (string, error) {
	c, err := canonical(v)
	if err != nil {
		return "", fmt.Errorf("readiness: canonical form: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, c)), nil
}

// SignVerdict sets v.KeyID and v.Signature. A nil Signer leaves v unsigned.
func (s *Signer) SignVerdict(v *Verdict) error {
	if s == nil {
		return nil
	}
	v.KeyID, v.Signature = s.KeyID, ""
	sig, err := s.sign(v)
	v.Signature = sig
	return err
}

// SignAggregate sets a.KeyID and a.Signature. A nil Signer leaves a unsigned.
func (s *Signer) SignAggregate(a *Aggregate) error {
	if s == nil {
		return nil
	}
	a.KeyID, a.Signature = s.KeyID, ""
	sig, err := s.sign(a)
	a.Signature = sig
	return err
}

func (vf *Verifier) verify(keyID, sig string, v any) error {
	if sig == "" {
		return ErrUnsigned
	}
	pub, ok := vf.Keys[keyID]
	if !ok {
		return fmt.Errorf("%w: unknown key id %q", ErrBadSignature, keyID)
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64: %v", ErrBadSignature, err)
	}
	c, err := canonical(v)
	if err != nil {
		return fmt.Errorf("readiness: canonical form: %w", err)
	}
	if !ed25519.Verify(pub, c, raw) {
		return fmt.Errorf("%w (key id %q)", ErrBadSignature, keyID)
	}
	return nil
}

// VerifyVerdict checks v's signature.
func (vf *Verifier) VerifyVerdict(v Verdict) error {
	if err := vf.verify(v.KeyID, v.Signature, v); err != nil {
		return fmt.Errorf("verdict on %s by %s rev %d: %w", v.Region, v.Observer, v.Revision, err)
	}
	return nil
}

// VerifyAggregate checks a's signature and those of the verdicts it counts.
func (vf *Verifier) VerifyAggregate(a Aggregate) error {
	if err := vf.verify(a.KeyID, a.Signature, a); err != nil {
		return fmt.Errorf("aggregate of %s rev %d by %s: %w", a.Region, a.Revision, a.PublishedBy, err)
	}
	for _, v := range a.Verdicts {
		if err := vf.VerifyVerdict(v); err != nil {
			return err
		}
	}
	return nil
}

// LoadSigner reads a PEM "PRIVATE KEY" (PKCS #8) ed25519 key, as written by
// `openssl genpkey -algorithm ed25519` or GenerateKeyPEM.
func LoadSigner(keyID, path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("readiness signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("readiness signing key %s: no PEM PRIVATE KEY block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("readiness signing key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("readiness signing key %s: %T is not an ed25519 key", path, k)
	}
	return &Signer{KeyID: keyID, Key: ek}, nil
}

// LoadPublicKey reads a PEM "PUBLIC KEY" (PKIX) ed25519 key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("readiness public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("readiness public key %s: no PEM PUBLIC KEY block", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("readiness public key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("readiness public key %s: %T is not an ed25519 key", path, k)
	}
	return ek, nil
}

// GenerateKeyPEM returns a new ed25519 key pair as PEM (private PKCS #8,
// public PKIX).
func GenerateKeyPEM() (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pb, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pb}), nil
}

// LoadVerifier reads the trusted public keys (key id → PEM file); nil when
// there are none.
func LoadVerifier(files map[string]string) (*Verifier, error) {
	if len(files) == 0 {
		return nil, nil
	}
	v := &Verifier{Keys: map[string]ed25519.PublicKey{}}
	for id, f := range files {
		k, err := LoadPublicKey(f)
		if err != nil {
			return nil, fmt.Errorf("readiness: trusted key %q: %w", id, err)
		}
		v.Keys[id] = k
	}
	return v, nil
}
