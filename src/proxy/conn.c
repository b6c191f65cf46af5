#include "proxy/conn.h"

const char *um_conn_result_str(int result)
{
    switch (result) {
    case UM_CONN_OK: return "connected";
    case UM_CONN_GENERAL_FAILURE: return "general failure";
    case UM_CONN_NOT_ALLOWED: return "not allowed by egress policy";
    case UM_CONN_NET_UNREACHABLE: return "network unreachable";
    case UM_CONN_HOST_UNREACHABLE: return "host unreachable";
    case UM_CONN_REFUSED: return "connection refused";
    case UM_CONN_TIMED_OUT: return "timed out";
    case UM_CONN_HOST_NOT_FOUND: return "host not found";
    default: return "unknown result";
    }
}
