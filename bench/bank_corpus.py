"""Synthetic but realistic bank texts and their edited copies, for bench/banks.py.

Written for this bench (not copied from anywhere): scam scripts, rumour chain letters and
spam ads in the shape they circulate in group chats — a family of sentences per script,
3 to 6 of them per text in their usual order, with the details (names, amounts, cities,
banks, dates, numbers) drawn at random. A million texts drawn this way share phrases
within a family, as real banks do, without being copies of each other.

Edits are what copies go through on their way around groups: punctuation and emoji
wedged in, 繁体, a few characters inserted or deleted, new details, a comment added.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

__all__ = ["EDITS", "FAMILIES", "benign_chat", "edit", "entry", "warning"]

_CITIES = ("北京 上海 广州 深圳 杭州 南京 武汉 成都 重庆 西安 长沙 郑州 济南 青岛 沈阳 大连 "
           "哈尔滨 长春 石家庄 太原 合肥 福州 厦门 南昌 南宁 昆明 贵阳 兰州 乌鲁木齐 呼和浩特 "
           "苏州 无锡 宁波 温州 东莞 佛山 珠海 惠州 洛阳 徐州").split()  # fmt: skip
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓"
             "曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢")  # fmt: skip
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞建国志宏海波宇浩然晨阳"
_BANKS = ("工商银行 建设银行 农业银行 中国银行 交通银行 招商银行 邮政储蓄银行 民生银行 浦发银行 "
          "兴业银行 中信银行 光大银行 平安银行").split()  # fmt: skip
_PLATFORMS = "淘宝 京东 拼多多 抖音商城 美团 唯品会 闲鱼 快手小店 苏宁易购 天猫".split()
_FOODS = "螃蟹 柿子 西红柿 鸡蛋 豆腐 菠菜 虾 牛奶 香蕉 红薯 绿豆汤 蜂蜜 海带 猪肝 土豆 西瓜".split()
_DISEASES = "流感 脑膜炎 肺炎 手足口病 肝炎 胃癌 白血病 禽流感 诺如病毒 狂犬病".split()
_PRODUCTS = ("空气炸锅 羽绒服 儿童座椅 电动牙刷 保温杯 奶粉 面霜 蓝牙耳机 扫地机器人 "
             "电热毯 运动鞋 学习机").split()  # fmt: skip
_HOSPITALS = "人民医院 中心医院 第一医院 妇幼保健院 中医院 儿童医院 协和医院 附属医院".split()
_PLACES = "万达广场 火车站 汽车站 人民公园 实验小学 菜市场 地铁站 沃尔玛 步行街 体育馆".split()
_RELATIVES = "爸 妈 老婆 老公 儿子 女儿 舅舅 姑姑 表哥 小姨".split()
_APPS = "会议助手 云视讯 安全助手 屏幕共享 远程协助 极速贷 钱包宝".split()
_CRIMES = "洗钱 非法集资 跨境赌博 电信诈骗 走私 贩卖个人信息".split()
_COMPANIES = "鼎盛国际 华夏财富 天合联盟 金源生态 万福健康 中禾科技 聚宝盆商城".split()
_COLOURS = "白色 银色 黑色 灰色 蓝色".split()


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choices("0123456789", k=n))


_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "city": lambda r: r.choice(_CITIES),
    "name": _name,
    "bank": lambda r: r.choice(_BANKS),
    "platform": lambda r: r.choice(_PLATFORMS),
    "food": lambda r: r.choice(_FOODS),
    "food2": lambda r: r.choice(_FOODS),
    "disease": lambda r: r.choice(_DISEASES),
    "product": lambda r: r.choice(_PRODUCTS),
    "hospital": lambda r: r.choice(_HOSPITALS),
    "place": lambda r: r.choice(_PLACES),
    "relative": lambda r: r.choice(_RELATIVES),
    "app": lambda r: r.choice(_APPS),
    "crime": lambda r: r.choice(_CRIMES),
    "company": lambda r: r.choice(_COMPANIES),
    "colour": lambda r: r.choice(_COLOURS),
    "amount": lambda r: str(r.randint(2, 300) * 100),
    "small": lambda r: str(r.choice((5, 8, 10, 18, 20, 28, 50))),
    "n": lambda r: str(r.randint(3, 30)),
    "pct": lambda r: str(r.randint(3, 40)),
    "date": lambda r: f"{r.randint(1, 12)}月{r.randint(1, 28)}日",
    "code": lambda r: _digits(r, r.randint(4, 6)),
    "card": lambda r: "6222" + _digits(r, 15),
    "phone": lambda r: "1" + r.choice("3456789") + _digits(r, 9),
    "wx": lambda r: r.choice(("vx", "wx", "v", "")) + _digits(r, r.randint(6, 9)),
    "site": lambda r: "".join(r.choices("abcdefghkmnpqrstwxyz", k=r.randint(4, 7))) + ".com",
    "age": lambda r: str(r.randint(3, 12)),
}

#: Families of sentences: (category, sentences). A text takes 3 to 6 of them, in order.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rumour_health": ("rumour", (
        "紧急通知！{city}{hospital}的{name}主任提醒大家：",
        "{food}和{food2}一起吃会产生剧毒，已经有{n}人因此住院抢救。",
        "最近{city}出现一种新型{disease}，症状和感冒很像，但是几天之内就会致命。",
        "每天早晚各喝一杯淡盐水可以预防{disease}，效果比打疫苗还好。",
        "{platform}上卖的{product}被检测出含有致癌物质，国家已经下令全面下架。",
        "微波炉加热过的{food}会产生大量致癌物，家里有老人小孩的千万不要再吃了。",
        "医院不会告诉你，{disease}其实用大蒜泡醋喝三天就能好。",
        "这是{hospital}内部消息，电视上不会播，看到的人赶紧转发给家里的老人。",
        "有孩子的家庭一定要注意，进口{food}里面发现了寄生虫卵，已经有小孩中招。",
        "请大家转发给身边的亲人朋友，转发一次就能救一个人。",
        "不转不是中国人，为了家人的健康请务必转发到十个群。",
    )),
    "rumour_safety": ("rumour", (
        "各位家长注意了！{city}{place}附近有一辆{colour}面包车专门偷小孩。",
        "昨天下午{place}有个{age}岁的孩子被人用迷药迷晕后带走，到现在都没有找到。",
        "有陌生人敲门说是查燃气的，千万不要开门，他们用的是新型迷魂药。",
        "最近有人在{place}用带{disease}病毒的针头扎人，已经有{n}个人被扎了。",
        "如果在车窗上看到夹着一张传单，千万不要下车去取，这是抢劫团伙的新手段。",
        "公安局的朋友说这伙人已经流窜到{city}，请大家互相转告。",
        "手机收到{code}开头的来电千万不要接，一接通话费就会被扣光。",
        "{date}晚上十点以后不要出门，据说{city}会有特大暴雨和龙卷风。",
        "地震局内部人员透露{city}近期会发生七级以上地震，请提前做好准备。",
        "请看到的朋友转发到家长群，让更多的家长提高警惕。",
    )),
    "rumour_policy": ("rumour", (
        "重磅消息！从{date}起，{city}所有退休老人每月可以多领{amount}元补贴。",
        "国家新规定，明年开始旧版人民币全部作废，请尽快到{bank}兑换。",
        "刚刚发布的通知，所有微信用户需要在{date}前完成实名认证，否则账号将被冻结。",
        "养老金将统一上调百分之{pct}，{date}之前补发到账，请相互转告。",
        "现在全国高速公路免费到{date}，大家出行可以放心。",
        "听说{city}要全面封城{n}天，赶紧去超市囤米囤油。",
        "从下个月开始，微信转账超过{amount}元就要交个人所得税。",
        "这个消息是我{relative}在政府上班的同事说的，绝对可靠。",
        "转发到三个群就可以免费领取一桶食用油，名额有限先到先得。",
        "现在不领以后就没有了，大家赶紧转发告诉身边的人。",
    )),
    "scam_refund": ("fraud", (
        "您好，我是{platform}的售后客服，工号{code}。",
        "您在{date}购买的{product}因为质量问题被召回，我们将为您办理{amount}元的退款。",
        "由于系统升级，您的订单出现异常，需要您配合操作才能把钱退回来。",
        "请您打开支付宝的备用金，先借出{amount}元，退款到账后会一起还上。",
        "为了核实您的身份，请把收到的六位验证码告诉我。",
        "请下载{app}这个软件，开启屏幕共享，我一步一步教您操作。",
        "您的快递在运输途中丢失了，我们按照三倍赔偿，一共{amount}元。",
        "如果今天不处理，您的账户每个月会被自动扣费{small}元。",
        "您开通了{platform}的百万保障服务，如果不取消的话会影响您的征信。",
        "操作完成后十分钟内款项就会原路退回到您的{bank}卡上。",
    )),
    "scam_relative": ("fraud", (
        "{relative}，我手机掉水里了，这是我的新号，先别打电话。",
        "我现在在{city}这边出了点事，急需用钱，你先转{amount}元给我。",
        "钱转到这张卡上，{bank}，户名{name}，卡号{card}。",
        "这件事千万别告诉家里其他人，等我回来当面跟你解释。",
        "我这边不方便接电话，有什么事在微信上说。",
        "老同学，好久不见，最近手头有点紧，能不能借我{amount}块钱周转一下？",
        "我是你{relative}的领导，他在外面出了车祸，现在需要马上交手术费。",
        "您孩子在学校突发急病，已经送到{city}{hospital}，需要先交{amount}元押金。",
        "明天一早就还你，你放心，我不会骗你的。",
        "转好了跟我说一声，截图发给我看看。",
    )),
    "scam_police": ("fraud", (
        "您好，这里是{city}公安局刑侦支队，我是{name}警官，警号{code}。",
        "经过调查，您的身份证涉嫌一起{crime}案件，涉案金额{n}万元。",
        "现在需要对您的资金进行清查，请把所有存款转到国家安全账户。",
        "这是一起机密案件，不能告诉任何人，包括您的家人，否则将追究您的法律责任。",
        "请到附近的宾馆开一个房间，单独配合我们的调查。",
        "我们会给您发一份逮捕令，请登录{site}查看。",
        "如果您是清白的，资金核查完毕后二十四小时内会全部退还。",
        "您名下的一张{bank}银行卡被用于洗钱，已经被冻结。",
        "接下来会有{city}检察院的{name}检察官跟您联系。",
        "请不要挂断电话，现在为您转接到{city}公安局。",
    )),
    "scam_invest": ("fraud", (
        "我舅舅在证券公司做内部数据分析，知道这个平台的漏洞。",
        "这周跟着老师操作已经赚了{amount}元，收益率达到百分之{pct}。",
        "现在入金{amount}元，保证每天稳定收益百分之{pct}，不赚钱全额退款。",
        "这是内部渠道，名额只有{n}个，错过这次就要等明年了。",
        "平台是有国家背书的，资金安全绝对没有问题。",
        "你先小额试一试，提现秒到账，你就知道我没骗你了。",
        "老师带单的胜率是百分之九十以上，加群免费跟单。",
        "提现需要先缴纳百分之{pct}的保证金，这是平台的规定。",
        "你的账户被风控了，需要再充值{amount}元才能解冻。",
        "宝贝，我们以后的幸福就靠这次了，你相信我一次好不好。",
    )),
    "scam_task": ("fraud", (
        "招聘兼职刷单员，在家用手机就能做，日结{amount}元。",
        "每单佣金百分之{pct}，做完任务立刻返还本金和佣金。",
        "第一单是体验单，金额只有{small}元，马上返现。",
        "接下来是连单任务，需要连续完成{n}单才能一起提现。",
        "您的任务操作超时，系统判定违规，需要补单{amount}元才能激活账户。",
        "添加接待员的微信{wx}，领取今天的任务。",
        "宝妈学生党都可以做，不收取任何押金。",
        "给主播点赞关注就可以拿钱，一个赞{small}元，一天轻松赚{amount}。",
    )),
    "scam_loan": ("fraud", (
        "无抵押无担保，凭身份证就能贷款，最高可贷{n}万元。",
        "您的贷款已审批通过，但是银行卡号填写错误，资金被冻结了。",
        "需要先交{amount}元的解冻费，才能把款放到您的{bank}卡上。",
        "征信不好也可以贷，黑户也能下款，十分钟到账。",
        "您的流水不足，需要向指定账户转入{amount}元刷流水。",
        "我们是正规持牌金融机构，月利息只有百分之{pct}。",
        "学生贷款不需要家长同意，下载{app}即可申请。",
        "逾期会上征信，影响子女上学，请尽快处理。",
    )),
    "spam_gambling": ("gambling", (
        "{site}真人百家乐，首充{amount}送{small}，天天返水百分之{pct}。",
        "老玩家都知道，这个平台出款快，信誉有保障。",
        "带你玩彩票，稳赚不赔，跟着计划走，一个月翻{n}倍。",
        "加我微信{wx}，拉你进内部群，每天免费送彩金。",
        "体育投注，世界杯竞猜，最高赔率{n}倍。",
        "注册就送{small}元体验金，可直接提现。",
        "网址是{site}，复制到浏览器打开，手机电脑都能玩。",
        "{city}老乡开的盘口，资金安全，输了包赔一半。",
        "六合彩内部资料，{date}必中特码，一码一肖。",
        "棋牌游戏充值{amount}送{small}，上分下分找客服。",
        "炸金花牛牛斗地主，真人对战，秒提现。",
        "昨天群里{name}一把赢了{amount}，截图为证。",
        "足球篮球电竞都能押，凌晨也有人接单。",
    )),
    "spam_invoice": ("fraud", (
        "本公司长期代开{city}各类发票，增值税专票普票均可开具。",
        "点数低，可验证后付款，诚信合作。",
        "联系电话{phone}，{name}经理，欢迎来电咨询。",
        "另有办理各类证件、资质，保证真实有效。",
        "需要的老板请加微信{wx}，量大从优。",
        "专业代办{city}营业执照、税务登记，三天出证。",
        "可开餐饮、住宿、运输、建材、办公用品等发票。",
        "公司有大量进项票，帮您合理节税，抵扣无忧。",
        "全国各地均可代开，快递包邮，上门送票。",
        "税点{small}个点起，长期合作更优惠。",
    )),
    "spam_mlm": ("pyramid_selling", (
        "{company}项目火爆招商中，投资{amount}元即可成为钻石会员。",
        "只要拉{n}个人加入，你就能升级，每个月躺赚{amount}元。",
        "这不是传销，是国家扶持的新经济模式，今年最后一次机会。",
        "下线每消费一笔，你都能拿到百分之{pct}的提成。",
        "我们有{n}万会员，每天分红，越早加入收益越高。",
        "周末在{city}{place}召开财富峰会，包吃包住，带朋友来听课。",
        "{company}的富硒酵素能治百病，买一套送一套，零售价{amount}元。",
        "一人投资，全家受益，三年实现财务自由。",
        "公司上市在即，原始股每股只要{small}元，错过后悔一辈子。",
        "{name}老师亲自授课，讲解零风险的致富模式。",
        "报单中心已经开到{city}，加盟费{amount}元。",
        "静态收益加动态奖励，推荐越多拿得越多。",
        "我们不是骗子，你看{name}已经开上了宝马。",
    )),
    "spam_porn": ("porn", (
        "同城寂寞美女在线约，{city}各区都有，上门服务。",
        "添加{wx}看私密视频，{small}元包月。",
        "新人学生妹，照片真实，不满意不收费。",
        "全套服务{amount}元，酒店或者来我家都可以。",
        "点击链接{site}进入直播间，主播一对一。",
        "{city}{place}附近的妹子，空虚寂寞的来聊。",
        "夜场资源，高端外围，身份保密。",
        "私人影院包间，成人影片随便看，{small}元一晚。",
        "看片神器免费下载，海量资源每日更新。",
        "美女荷官在线陪聊，视频裸聊{small}元一次。",
        "有需要的朋友私信我，发你照片先看看。",
    )),
}

#: What ads of every kind end with; any text may borrow one.
_CLOSINGS = ("有意者私聊。", "名额有限，先到先得。", "加我微信{wx}详聊。",
             "电话{phone}，随时联系。", "错过今天再等一年。", "信誉第一，欢迎咨询。",
             "看到消息的朋友回复1。", "详情点击{site}。")  # fmt: skip

_SLOT = re.compile(r"\{(\w+)\}")


def _fill(sentence: str, rng: random.Random) -> str:
    return _SLOT.sub(lambda m: _SLOTS[m.group(1)](rng), sentence)


#: Wordings that scripts vary as they are retold: each occurrence is swapped half the time.
_SYNONYMS = {
    "千万": ("一定", "绝对", "切记"), "马上": ("立刻", "赶紧", "立即"), "请": ("麻烦", "务必"),
    "大家": ("各位", "所有人", "亲们"), "朋友": ("亲友", "好友"), "转发": ("转给", "分享", "发给"),
    "已经": ("都已经", "早就"), "现在": ("目前", "眼下", "这会儿"), "需要": ("必须", "得"),
    "您": ("你",), "可以": ("能", "就能"), "不要": ("别", "不能"), "最近": ("近期", "这几天"),
    "赶紧": ("抓紧", "快点"), "我们": ("咱们", "本平台"), "提醒": ("告诉", "通知"),
    "如果": ("要是", "假如"), "一定": ("务必", "必须"), "元": ("块", "块钱"),
}  # fmt: skip
_ASIDES = ("真的！", "重要的事情说三遍。", "刚刚收到的消息，", "听我说，", "不是开玩笑，",
           "时间紧迫，", "看完记得回复，", "信不信由你，", "亲身经历，", "注意看，")  # fmt: skip
_WORDING = re.compile("|".join(sorted(_SYNONYMS, key=len, reverse=True)))


def _vary(sentence: str, rng: random.Random) -> str:
    """One retelling's wording: synonyms swapped, now and then an aside in front."""
    varied = _WORDING.sub(
        lambda m: rng.choice(_SYNONYMS[m.group()]) if rng.random() < 0.5 else m.group(), sentence
    )
    return (rng.choice(_ASIDES) + varied) if rng.random() < 0.15 else varied


def entry(rng: random.Random) -> tuple[str, str, tuple[str, ...]]:
    """``(category, text, script)``: 3–6 sentences of one family in order, in one
    retelling's wording; the script keeps the slots, so its details can be redrawn."""
    family = rng.choice(list(FAMILIES))
    category, own = FAMILIES[family]
    # Mostly the family's own sentences; scripts borrow from their kin (a refund scam that
    # ends as a loan scam), which keeps a million texts from being copies of each other.
    kin = [s for name, (c, ss) in FAMILIES.items() if c == category and name != family for s in ss]
    chosen = rng.sample(own, rng.randint(2, 4)) + rng.sample(kin, min(len(kin), rng.randint(0, 3)))
    rng.shuffle(chosen)
    if rng.random() < 0.3:
        chosen.append(rng.choice(_CLOSINGS))
    script = tuple(_vary(sentence, rng) for sentence in chosen)
    return category, "".join(_fill(t, rng) for t in script), script


_NOISE = [*"，。！？、~…·*# ", "😀", "🙏", "👍", "🔥", "❗", "【", "】", "\u200b"]
#: Common characters for insertions (so inserted text looks like text, not noise).
_COMMON = "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后自以会"


def _insert(text: str, rng: random.Random, rate: float, pool: Sequence[str] = _COMMON) -> str:
    """After each character, one from ``pool`` with probability ``rate``."""
    out = []
    for ch in text:
        out.append(ch)
        if rng.random() < rate:
            out.append(rng.choice(pool))
    return "".join(out)


def _delete(text: str, rng: random.Random, rate: float) -> str:
    return "".join(ch for ch in text if rng.random() >= rate)


def _noise(text: str, rng: random.Random, rate: float = 0.25) -> str:
    return _insert(text, rng, rate, _NOISE)


def _traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


_COMMENTS = ("转发：", "大家注意！", "刚在家长群看到的，", "真的假的？", "我妈发给我的，",
             "太可怕了，", "速看！", "朋友圈都在传：")  # fmt: skip

#: Edit name → function(text, templates, rng). Light edits are what a near-duplicate bank
#: must catch; ``heavy`` (15 % of characters inserted and as many deleted) shows where
#: recall ends.
EDITS: dict[str, Callable[[str, tuple[str, ...], random.Random], str]] = {
    "exact": lambda t, _, r: t,
    "noise": lambda t, _, r: _noise(t, r),
    "traditional": lambda t, _, r: _traditional(t),
    "insert 5%": lambda t, _, r: _insert(t, r, 0.05),
    "delete 5%": lambda t, _, r: _delete(t, r, 0.05),
    "new details": lambda _, tpl, r: "".join(_fill(s, r) for s in tpl),
    "comment added": lambda t, _, r: r.choice(_COMMENTS) + t + r.choice(_COMMENTS),
    "mixed": lambda t, _, r: _noise(_traditional(_delete(_insert(t, r, 0.03), r, 0.03)), r, 0.1),
    "heavy 15%": lambda t, _, r: _delete(_insert(t, r, 0.15), r, 0.15),
}


def edit(name: str, text: str, templates: tuple[str, ...], rng: random.Random) -> str:
    return EDITS[name](text, templates, rng)


_WARNINGS = ("提醒大家：最近有骗子会说“{s}”，千万别信，遇到请拨打96110。",
             "派出所提示：凡是说“{s}”的都是诈骗，请勿转账。",
             "辟谣：网传“{s}”是假消息，请大家不要相信，也不要转发。")  # fmt: skip


def warning(templates: tuple[str, ...], rng: random.Random) -> str:
    """A warning that quotes one sentence of a script: related, not a copy."""
    return rng.choice(_WARNINGS).format(s=_fill(rng.choice(templates), rng))


_CHAT = (
    "明天早上{n}点在{place}门口集合，别迟到了", "今天{city}好热啊，出门记得带伞防晒",
    "周末有人去{city}玩吗？我想去爬山", "我刚在{platform}买了个{product}，质量还不错",
    "孩子作业写完了没有？老师说明天要检查", "晚上吃{food}炒饭还是去外面吃火锅",
    "群里谁有{hospital}的挂号经验，周一去看病", "{name}结婚的份子钱大家准备给多少",
    "下班路上堵死了，估计要晚半小时到家", "这个{product}的说明书有人看得懂吗",
    "物业通知：{date}上午停水，请提前储水", "今天的会改到下午三点，地点不变",
    "谢谢大家的祝福，我们全家都很好", "明天家长会，{name}的爸爸能来吗",
)  # fmt: skip


def benign_chat(rng: random.Random) -> str:
    """Everyday group chat on the same subjects (cities, shops, hospitals, money)."""
    return "，".join(_fill(rng.choice(_CHAT), rng) for _ in range(rng.randint(1, 3)))
