package wire

import "fmt"

// ExchangeType is the IKE header's Exchange Type (RFC 7296 §3.1).
type ExchangeType uint8

// Exchange types.
const (
	IKESAInit     ExchangeType = 34
	IKEAuth       ExchangeType = 35
	CreateChildSA ExchangeType = 36
	Informational ExchangeType = 37
)

// String returns the RFC name of the exchange.
func (e ExchangeType) String() string {
	switch e {
	case IKESAInit:
		return "IKE_SA_INIT"
	case IKEAuth:
		return "IKE_AUTH"
	case CreateChildSA:
		return "CREATE_CHILD_SA"
	case Informational:
		return "INFORMATIONAL"
	}
	return fmt.Sprintf("EXCHANGE(%d)", uint8(e))
}

// Flags are the IKE header flags (RFC 7296 §3.1).
type Flags uint8

// Header flags.
const (
	FlagInitiator Flags = 0x08 // sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // sender can speak a higher major version
	FlagResponse  Flags = 0x20 // the message is a response
)

// PayloadType is a Next Payload value (RFC 7296 §3.2, RFC 7383 §2.5).
type PayloadType uint8

// Payload types.
const (
	PayloadNone    PayloadType = 0
	PayloadSA      PayloadType = 33
	PayloadKE      PayloadType = 34
	PayloadIDi     PayloadType = 35
	PayloadIDr     PayloadType = 36
	PayloadCERT    PayloadType = 37
	PayloadCERTREQ PayloadType = 38
	PayloadAUTH    PayloadType = 39
	PayloadNonce   PayloadType = 40
	PayloadNotify  PayloadType = 41
	PayloadDelete  PayloadType = 42
	PayloadVendor  PayloadType = 43
	PayloadTSi     PayloadType = 44
	PayloadTSr     PayloadType = 45
	PayloadSK      PayloadType = 46
	PayloadCP      PayloadType = 47
	PayloadEAP     PayloadType = 48
	PayloadSKF     PayloadType = 53
)

// String returns the RFC abbreviation of the payload type.
func (p PayloadType) String() string {
	switch p {
	case PayloadNone:
		return "NONE"
	case PayloadSA:
		return "SA"
	case PayloadKE:
		return "KE"
	case PayloadIDi:
		return "IDi"
	case PayloadIDr:
		return "IDr"
	case PayloadCERT:
		return "CERT"
	case PayloadCERTREQ:
		return "CERTREQ"
	case PayloadAUTH:
		return "AUTH"
	case PayloadNonce:
		return "No"
	case PayloadNotify:
		return "N"
	case PayloadDelete:
		return "D"
	case PayloadVendor:
		return "V"
	case PayloadTSi:
		return "TSi"
	case PayloadTSr:
		return "TSr"
	case PayloadSK:
		return "SK"
	case PayloadCP:
		return "CP"
	case PayloadEAP:
		return "EAP"
	case PayloadSKF:
		return "SKF"
	}
	return fmt.Sprintf("PAYLOAD(%d)", uint8(p))
}

// ProtocolID names the protocol of a proposal, notify or delete
// (RFC 7296 §3.3.1).
type ProtocolID uint8

// Protocol IDs.
const (
	ProtoNone ProtocolID = 0
	ProtoIKE  ProtocolID = 1
	ProtoAH   ProtocolID = 2
	ProtoESP  ProtocolID = 3
)

// String returns the RFC name of the protocol.
func (p ProtocolID) String() string {
	switch p {
	case ProtoNone:
		return "NONE"
	case ProtoIKE:
		return "IKE"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	}
	return fmt.Sprintf("PROTO(%d)", uint8(p))
}

// TransformType is the type of a transform (RFC 7296 §3.3.2).
type TransformType uint8

// Transform types.
const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformDH    TransformType = 4
	TransformESN   TransformType = 5
)

// String returns the RFC name of the transform type.
func (t TransformType) String() string {
	switch t {
	case TransformENCR:
		return "ENCR"
	case TransformPRF:
		return "PRF"
	case TransformINTEG:
		return "INTEG"
	case TransformDH:
		return "DH"
	case TransformESN:
		return "ESN"
	}
	return fmt.Sprintf("TRANSFORM(%d)", uint8(t))
}

// Transform IDs used by havpn (IANA "IKEv2 Parameters").
const (
	// Encryption (type 1).
	EncrDES3             uint16 = 3
	EncrNull             uint16 = 11
	EncrAESCBC           uint16 = 12
	EncrAESCTR           uint16 = 13
	EncrAESGCM8          uint16 = 18
	EncrAESGCM12         uint16 = 19
	EncrAESGCM16         uint16 = 20
	EncrChaCha20Poly1305 uint16 = 28

	// Pseudo-random functions (type 2).
	PRFHMACMD5     uint16 = 1
	PRFHMACSHA1    uint16 = 2
	PRFHMACSHA2256 uint16 = 5
	PRFHMACSHA2384 uint16 = 6
	PRFHMACSHA2512 uint16 = 7

	// Integrity (type 3).
	IntegNone          uint16 = 0
	IntegHMACSHA196    uint16 = 2
	IntegHMACSHA256128 uint16 = 12
	IntegHMACSHA384192 uint16 = 13
	IntegHMACSHA512256 uint16 = 14

	// Key exchange (Diffie-Hellman) groups (type 4).
	DHNone       uint16 = 0
	DHModp1024   uint16 = 2
	DHModp2048   uint16 = 14
	DHECP256     uint16 = 19
	DHECP384     uint16 = 20
	DHECP521     uint16 = 21
	DHCurve25519 uint16 = 31
	DHCurve448   uint16 = 32

	// Extended sequence numbers (type 5).
	ESNNo  uint16 = 0
	ESNYes uint16 = 1
)

// AttrKeyLength is the Key Length transform attribute (RFC 7296 §3.3.5),
// always in TV format.
const AttrKeyLength uint16 = 14

// IDType is the type of an Identification payload (RFC 7296 §3.5).
type IDType uint8

// Identification types.
const (
	IDIPv4   IDType = 1
	IDFQDN   IDType = 2
	IDRFC822 IDType = 3
	IDIPv6   IDType = 5
	IDDN     IDType = 9
	IDKeyID  IDType = 11
)

// String returns the RFC name of the identification type.
func (t IDType) String() string {
	switch t {
	case IDIPv4:
		return "ID_IPV4_ADDR"
	case IDFQDN:
		return "ID_FQDN"
	case IDRFC822:
		return "ID_RFC822_ADDR"
	case IDIPv6:
		return "ID_IPV6_ADDR"
	case IDDN:
		return "ID_DER_ASN1_DN"
	case IDKeyID:
		return "ID_KEY_ID"
	}
	return fmt.Sprintf("ID(%d)", uint8(t))
}

// CertEncoding is the encoding of a CERT or CERTREQ payload (RFC 7296 §3.6).
type CertEncoding uint8

// Certificate encodings.
const (
	CertX509Signature CertEncoding = 4
)

// AuthMethod is the AUTH payload's method (RFC 7296 §3.8, RFC 7427).
type AuthMethod uint8

// Authentication methods.
const (
	AuthRSASig     AuthMethod = 1
	AuthSharedKey  AuthMethod = 2
	AuthDSS        AuthMethod = 3
	AuthECDSA256   AuthMethod = 9
	AuthECDSA384   AuthMethod = 10
	AuthECDSA521   AuthMethod = 11
	AuthDigitalSig AuthMethod = 14 // RFC 7427
)

// String returns the RFC name of the method.
func (m AuthMethod) String() string {
	switch m {
	case AuthRSASig:
		return "RSA_SIG"
	case AuthSharedKey:
		return "SHARED_KEY_MIC"
	case AuthDSS:
		return "DSS_SIG"
	case AuthECDSA256:
		return "ECDSA_SHA256_P256"
	case AuthECDSA384:
		return "ECDSA_SHA384_P384"
	case AuthECDSA521:
		return "ECDSA_SHA512_P521"
	case AuthDigitalSig:
		return "DIGITAL_SIGNATURE"
	}
	return fmt.Sprintf("AUTH(%d)", uint8(m))
}

// NotifyType is a Notify Message Type (RFC 7296 §3.10.1). Values below
// 16384 are errors, the rest status types.
type NotifyType uint16

// Notify message types.
const (
	UnsupportedCriticalPayload NotifyType = 1
	InvalidIKESPI              NotifyType = 4
	InvalidMajorVersion        NotifyType = 5
	InvalidSyntax              NotifyType = 7
	InvalidMessageID           NotifyType = 9
	InvalidSPI                 NotifyType = 11
	NoProposalChosen           NotifyType = 14
	InvalidKEPayload           NotifyType = 17
	AuthenticationFailed       NotifyType = 24
	SinglePairRequired         NotifyType = 34
	NoAdditionalSAs            NotifyType = 35
	InternalAddressFailure     NotifyType = 36
	FailedCPRequired           NotifyType = 37
	TSUnacceptable             NotifyType = 38
	InvalidSelectors           NotifyType = 39
	TemporaryFailure           NotifyType = 43
	ChildSANotFound            NotifyType = 44

	InitialContact              NotifyType = 16384
	SetWindowSize               NotifyType = 16385
	AdditionalTSPossible        NotifyType = 16386
	IPCompSupported             NotifyType = 16387
	NATDetectionSourceIP        NotifyType = 16388
	NATDetectionDestinationIP   NotifyType = 16389
	Cookie                      NotifyType = 16390
	UseTransportMode            NotifyType = 16391
	HTTPCertLookupSupported     NotifyType = 16392
	RekeySA                     NotifyType = 16393
	ESPTFCPaddingNotSupported   NotifyType = 16394
	NonFirstFragmentsAlso       NotifyType = 16395
	MOBIKESupported             NotifyType = 16396
	IKEv2FragmentationSupported NotifyType = 16430
	SignatureHashAlgorithms     NotifyType = 16431
)

// IsError reports whether t is an error notification (RFC 7296 §3.10.1).
func (t NotifyType) IsError() bool { return t < 16384 }

// String returns the RFC name of the notification.
func (t NotifyType) String() string {
	switch t {
	case UnsupportedCriticalPayload:
		return "UNSUPPORTED_CRITICAL_PAYLOAD"
	case InvalidIKESPI:
		return "INVALID_IKE_SPI"
	case InvalidMajorVersion:
		return "INVALID_MAJOR_VERSION"
	case InvalidSyntax:
		return "INVALID_SYNTAX"
	case InvalidMessageID:
		return "INVALID_MESSAGE_ID"
	case InvalidSPI:
		return "INVALID_SPI"
	case NoProposalChosen:
		return "NO_PROPOSAL_CHOSEN"
	case InvalidKEPayload:
		return "INVALID_KE_PAYLOAD"
	case AuthenticationFailed:
		return "AUTHENTICATION_FAILED"
	case SinglePairRequired:
		return "SINGLE_PAIR_REQUIRED"
	case NoAdditionalSAs:
		return "NO_ADDITIONAL_SAS"
	case InternalAddressFailure:
		return "INTERNAL_ADDRESS_FAILURE"
	case FailedCPRequired:
		return "FAILED_CP_REQUIRED"
	case TSUnacceptable:
		return "TS_UNACCEPTABLE"
	case InvalidSelectors:
		return "INVALID_SELECTORS"
	case TemporaryFailure:
		return "TEMPORARY_FAILURE"
	case ChildSANotFound:
		return "CHILD_SA_NOT_FOUND"
	case InitialContact:
		return "INITIAL_CONTACT"
	case SetWindowSize:
		return "SET_WINDOW_SIZE"
	case AdditionalTSPossible:
		return "ADDITIONAL_TS_POSSIBLE"
	case IPCompSupported:
		return "IPCOMP_SUPPORTED"
	case NATDetectionSourceIP:
		return "NAT_DETECTION_SOURCE_IP"
	case NATDetectionDestinationIP:
		return "NAT_DETECTION_DESTINATION_IP"
	case Cookie:
		return "COOKIE"
	case UseTransportMode:
		return "USE_TRANSPORT_MODE"
	case HTTPCertLookupSupported:
		return "HTTP_CERT_LOOKUP_SUPPORTED"
	case RekeySA:
		return "REKEY_SA"
	case ESPTFCPaddingNotSupported:
		return "ESP_TFC_PADDING_NOT_SUPPORTED"
	case NonFirstFragmentsAlso:
		return "NON_FIRST_FRAGMENTS_ALSO"
	case MOBIKESupported:
		return "MOBIKE_SUPPORTED"
	case IKEv2FragmentationSupported:
		return "IKEV2_FRAGMENTATION_SUPPORTED"
	case SignatureHashAlgorithms:
		return "SIGNATURE_HASH_ALGORITHMS"
	}
	return fmt.Sprintf("NOTIFY(%d)", uint16(t))
}

// TSType is a traffic selector type (RFC 7296 §3.13.1).
type TSType uint8

// Traffic selector types.
const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

// CfgType is the type of a Configuration payload (RFC 7296 §3.15).
type CfgType uint8

// Configuration payload types.
const (
	CfgRequest CfgType = 1
	CfgReply   CfgType = 2
	CfgSet     CfgType = 3
	CfgAck     CfgType = 4
)

// Signature hash algorithm identifiers for SIGNATURE_HASH_ALGORITHMS
// (RFC 7427 §7, RFC 8420).
const (
	HashSHA1     uint16 = 1
	HashSHA2256  uint16 = 2
	HashSHA2384  uint16 = 3
	HashSHA2512  uint16 = 4
	HashIdentity uint16 = 5
)
