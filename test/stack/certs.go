package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are throwaway certificates made at test time with crypto/x509: a
// CA, server certificates signed by it, and a client certificate. Every
// file is PEM; keys are unencrypted PKCS#8 (Kafka's PEM key store reads
// only PKCS#8). They are valid from an hour ago for a day.
type Certs struct {
	Dir string // where the files are

	// CAFile is the CA's certificate, the root every client is given.
	CAFile string
	// ServerCert and ServerKey are valid for 127.0.0.1, ::1 and localhost.
	ServerCert, ServerKey string
	// WrongHostCert and WrongHostKey are signed by the same CA but name
	// only wrong.invalid: a client verifying the host must refuse them.
	WrongHostCert, WrongHostKey string
	// ClientCert and ClientKey identify the client ClientName (its CN), for
	// certificate authentication.
	ClientCert, ClientKey string
	ClientName            string

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
}

// NewCerts makes a CA, the server, wrong-host and client certificates in a
// fresh directory of the test (removed by its cleanup). client is the
// client certificate's common name (default "chronicler").
func NewCerts(t testing.TB, client string) *Certs {
	t.Helper()
	c, err := MakeCerts(t.TempDir(), client)
	if err != nil {
		t.Fatalf("stack: making test certificates: %v", err)
	}
	return c
}

// MakeCerts is NewCerts into dir, for callers without a testing.TB. The
// directory and files are readable by everyone (the servers run as another
// user); the test directory is the boundary.
func MakeCerts(dir, client string) (*Certs, error) {
	if client == "" {
		client = "chronicler"
	}
	c := &Certs{Dir: dir, ClientName: client}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "chronicler test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := c.sign(ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	if c.ca, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	c.caKey = caKey
	c.CAFile = filepath.Join(dir, "ca.pem")
	if err := writePEM(c.CAFile, "CERTIFICATE", der); err != nil {
		return nil, err
	}
	localhost := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if c.ServerCert, c.ServerKey, err = c.leaf("server", localhost); err != nil {
		return nil, err
	}
	wrong := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "wrong.invalid"},
		DNSNames:    []string{"wrong.invalid"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if c.WrongHostCert, c.WrongHostKey, err = c.leaf("wronghost", wrong); err != nil {
		return nil, err
	}
	cl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: client},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if c.ClientCert, c.ClientKey, err = c.leaf("client", cl); err != nil {
		return nil, err
	}
	return c, nil
}

// Leaf signs one more certificate with the CA: tmpl's subject, names and
// usages, a fresh key; name is the files' base name (name.pem, name-key.pem).
func (c *Certs) Leaf(name string, tmpl *x509.Certificate) (certFile, keyFile string, err error) {
	return c.leaf(name, tmpl)
}

func (c *Certs) leaf(name string, tmpl *x509.Certificate) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := c.sign(tmpl, c.ca, &key.PublicKey, c.caKey)
	if err != nil {
		return "", "", err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(c.Dir, name+".pem")
	keyFile = filepath.Join(c.Dir, name+"-key.pem")
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}
	if err := writePEM(keyFile, "PRIVATE KEY", pkcs8); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func (c *Certs) sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, priv *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate of %s: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// Pool is a certificate pool holding only the CA.
func (c *Certs) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.ca)
	return p
}

// ServerTLS is a server configuration presenting the server certificate
// (or, with wrongHost, the wrong-host one).
func (c *Certs) ServerTLS(wrongHost bool) (*tls.Config, error) {
	cert, key := c.ServerCert, c.ServerKey
	if wrongHost {
		cert, key = c.WrongHostCert, c.WrongHostKey
	}
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}, nil
}

// ClientTLS is a client configuration that trusts only the CA.
func (c *Certs) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: c.Pool(), MinVersion: tls.VersionTLS12}
}

// copyFileFor copies a certificate or key file into dir with mode, owned
// by who (servers that insist on owning their key, as Postgres does), and
// returns the copy's path.
func copyFileFor(who *runAs, src, dir string, mode os.FileMode) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, mode); err != nil {
		return "", err
	}
	if err := os.Chmod(dst, mode); err != nil {
		return "", err
	}
	if who != nil {
		if err := os.Chown(dst, int(who.uid), int(who.gid)); err != nil {
			return "", err
		}
	}
	return dst, nil
}

func writePEM(path, typ string, der []byte) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	return os.Chmod(path, 0o644) // umask must not make the servers' user unable to read it
}
