package event

import "github.com/pktdrop/pktdrop/gen"

// Point is where on its path a packet was seen.
type Point uint8

const (
	PointNetifReceive = Point(gen.PktdropPdPointPD_POINT_NETIF_RECEIVE)
	PointIPRcv        = Point(gen.PktdropPdPointPD_POINT_IP_RCV)
	PointNFHook       = Point(gen.PktdropPdPointPD_POINT_NF_HOOK)
	PointNFLink       = Point(gen.PktdropPdPointPD_POINT_NF_LINK)
	PointFIBLookup    = Point(gen.PktdropPdPointPD_POINT_FIB_LOOKUP)
	PointFIBValidate  = Point(gen.PktdropPdPointPD_POINT_FIB_VALIDATE)
	PointIPForward    = Point(gen.PktdropPdPointPD_POINT_IP_FORWARD)
	PointIPOutput     = Point(gen.PktdropPdPointPD_POINT_IP_OUTPUT)
	PointDevQueue     = Point(gen.PktdropPdPointPD_POINT_DEV_QUEUE)
	PointDevXmit      = Point(gen.PktdropPdPointPD_POINT_DEV_XMIT)
)

// VerdictPending marks a netfilter step whose verdict was never seen.
const VerdictPending = 0x7fffffff

func (p Point) String() string {
	switch p {
	case PointNetifReceive:
		return "receive"
	case PointIPRcv:
		return "ip_rcv"
	case PointNFHook, PointNFLink:
		return "netfilter"
	case PointFIBLookup:
		return "route"
	case PointFIBValidate:
		return "rp_check"
	case PointIPForward:
		return "forward"
	case PointIPOutput:
		return "ip_output"
	case PointDevQueue:
		return "queue"
	case PointDevXmit:
		return "xmit"
	}
	return "unknown"
}
