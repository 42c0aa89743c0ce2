package remoting

// Request codes (RequestCode.java).
const (
	SendMessage                   = 10
	PullMessage                   = 11
	QueryMessage                  = 12
	QueryConsumerOffset           = 14
	UpdateConsumerOffset          = 15
	CreateTopic                   = 17
	SearchOffsetByTimestamp       = 29
	GetMaxOffset                  = 30
	GetMinOffset                  = 31
	GetEarliestMsgStoreTime       = 32
	ViewMessageByID               = 33
	HeartBeat                     = 34
	UnregisterClient              = 35
	ConsumerSendMsgBack           = 36
	EndTransaction                = 37
	GetConsumerListByGroup        = 38
	CheckTransactionState         = 39
	NotifyConsumerIDsChanged      = 40
	LockBatchMQ                   = 41
	UnlockBatchMQ                 = 42
	GetRouteInfoByTopic           = 105
	GetBrokerClusterInfo          = 106
	GetAllSubscriptionGroupConfig = 201
	GetAllTopicListFromNameServer = 206
	DeleteTopicInBroker           = 215
	DeleteTopicInNameServer       = 216
	QueryTopicConsumeByWho        = 300
	SendMessageV2                 = 310
	SendBatchMessage              = 320
	SendReplyMessage              = 324
	SendReplyMessageV2            = 325
)

// Response codes (ResponseCode.java).
const (
	Success                 = 0
	SystemError             = 1
	SystemBusy              = 2
	RequestCodeNotSupported = 3
	MessageIllegal          = 13
	ServiceNotAvailable     = 14
	NoPermission            = 16
	TopicNotExist           = 17
	PullNotFound            = 19
	PullRetryImmediately    = 20
	PullOffsetMoved         = 21
	QueryNotFound           = 22
	SubscriptionNotExist    = 24
)
